package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// bar is one bar of a chart.
type bar struct {
	Label string
	Value int
}

// chart geometry, in SVG user units.
const (
	chartW, chartH = 640, 180
	padL, padB     = 40, 28
)

var funcs = template.FuncMap{
	"bars": barChart,
	"statusBars": func(cs []statusCount) []bar {
		out := make([]bar, len(cs))
		for i, c := range cs {
			out[i] = bar{Label: c.Status, Value: c.Count}
		}
		return out
	},
	"activity": activityChart,
	"ms":       func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"clock":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"dead":     func(st retry.Status) bool { return st == retry.StatusFailed || st == retry.StatusFailedMaxRetries },
	"limit":    retry.LimitText,
}

// barChart renders bars as an SVG bar chart with each value written above
// its bar.
func barChart(title string, bars []bar) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(title))
	maxV := 1
	for _, x := range bars {
		maxV = max(maxV, x.Value)
	}
	n := max(len(bars), 1)
	slot := float64(chartW-padL) / float64(n)
	plotH := float64(chartH - padB - 14)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, chartH-padB, chartW, chartH-padB)
	for i, x := range bars {
		h := plotH * float64(x.Value) / float64(maxV)
		bx := float64(padL) + float64(i)*slot + slot*0.15
		by := float64(chartH-padB) - h
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d</title></rect>`,
			bx, by, slot*0.7, h, template.HTMLEscapeString(x.Label), x.Value)
		fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f">%d</text>`, bx+slot*0.35, by-3, x.Value)
		fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%d">%s</text>`, bx+slot*0.35, chartH-padB+16, template.HTMLEscapeString(x.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// activityChart renders attempts per bucket as bars, with the retries of
// each bucket as a darker bar over it.
func activityChart(a *retry.Activity) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="attempts and retries over time">`, chartW, chartH)
	maxV := 1
	for _, x := range a.Buckets {
		maxV = max(maxV, x.Attempts)
	}
	n := max(len(a.Buckets), 1)
	slot := float64(chartW-padL) / float64(n)
	plotH := float64(chartH - padB - 14)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, chartH-padB, chartW, chartH-padB)
	fmt.Fprintf(&b, `<text class="label start" x="4" y="20">%d</text>`, maxV)
	for i, x := range a.Buckets {
		bx := float64(padL) + float64(i)*slot
		for _, s := range []struct {
			class string
			v     int
		}{{"bar", x.Attempts}, {"bar retries", x.Retries}} {
			h := plotH * float64(s.v) / float64(maxV)
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d attempts, %d failures, %d retries</title></rect>`,
				s.class, bx, float64(chartH-padB)-h, max(slot-1, 0.5), h, x.Start.UTC().Format("15:04:05"), x.Attempts, x.Failures, x.Retries)
		}
	}
	if len(a.Buckets) > 0 {
		first, last := a.Buckets[0].Start, a.Buckets[len(a.Buckets)-1].Start
		fmt.Fprintf(&b, `<text class="label start" x="%d" y="%d">%s</text>`, padL, chartH-padB+16, first.UTC().Format("Jan 2 15:04"))
		fmt.Fprintf(&b, `<text class="label end" x="%d" y="%d">%s UTC</text>`, chartW, chartH-padB+16, last.UTC().Format("Jan 2 15:04"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// timeline places a run's attempts on one time axis.
type timeline struct {
	Rows  []timelineRow
	Start time.Time
	Span  time.Duration
}

type timelineRow struct {
	A          retry.Attempt
	X, W, Y    float64
	Class      string
	Gap        float64 // x of the chosen delay's end, 0 when none
	GapVisible bool
}

const timelineW, rowH = 640.0, 22.0

func newTimeline(atts []retry.Attempt) timeline {
	var tl timeline
	if len(atts) == 0 {
		return tl
	}
	start, end := atts[0].StartedAt, atts[0].FinishedAt
	for _, a := range atts {
		if !a.StartedAt.IsZero() && a.StartedAt.Before(start) {
			start = a.StartedAt
		}
		end = maxTime(end, a.FinishedAt.Add(a.Decision.Delay))
	}
	tl.Start, tl.Span = start, max(end.Sub(start), time.Millisecond)
	x := func(t time.Time) float64 { return timelineW * float64(t.Sub(start)) / float64(tl.Span) }
	for i, a := range atts {
		s := a.StartedAt
		if s.IsZero() {
			s = a.FinishedAt
		}
		r := timelineRow{A: a, X: x(s), W: max(x(a.FinishedAt)-x(s), 2), Y: float64(i) * rowH, Class: string(a.Outcome)}
		if a.Decision.Delay > 0 {
			r.Gap, r.GapVisible = x(a.FinishedAt.Add(a.Decision.Delay)), true
		}
		tl.Rows = append(tl.Rows, r)
	}
	return tl
}

// Height is the SVG's height.
func (t timeline) Height() float64 { return float64(len(t.Rows))*rowH + 4 }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
