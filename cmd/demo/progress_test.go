package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestProgressOnATerminal: with stderr a terminal (a pty) the demo draws a
// bar in carriage-return frames, and no frame of the bar's first seconds
// estimates the time left while fewer than 5 % of the runs are done (the
// bar shows no estimate before 2 s or 5 %). A frame is timed when the
// test reads it, after the demo drew it; the window is 1.5 s from the
// first frame, so that a late first frame cannot push a frame the bar
// drew after its 2 s into it.
func TestProgressOnATerminal(t *testing.T) {
	t.Parallel()
	ptmx, tty, err := pty.Open()
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skip("no pseudo-terminals here")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 200}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := demoCmd(ctx, dir, nil, "--store", filepath.Join(dir, "tty.db"), "--runs", "300", "--log-level", "error")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the demo holds the only other end: reads end when it exits

	type chunk struct {
		at   time.Duration
		text string
	}
	var chunks []chunk
	buf := make([]byte, 4096)
	for {
		n, err := ptmx.Read(buf)
		if n > 0 {
			chunks = append(chunks, chunk{time.Since(start), string(buf[:n])})
		}
		if err != nil { // EIO on Linux once the demo has exited
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo: %v\n%s", err, stdout.String())
	}

	count := regexp.MustCompile(`\((\d+)/(\d+)\)`)
	var frames, early int
	// The bar's two seconds start with the bar, which a loaded machine may
	// start well after the process: they are counted from its first frame,
	// with a margin for a frame that reached the test late.
	first := time.Duration(-1)
	for _, c := range chunks {
		for _, f := range strings.Split(c.text, "\r") {
			m := count.FindStringSubmatch(f)
			if m == nil {
				continue
			}
			frames++
			if first < 0 {
				first = c.at
			}
			done, _ := strconv.Atoi(m[1])
			all, _ := strconv.Atoi(m[2])
			if c.at-first >= 1500*time.Millisecond || done*20 >= all {
				continue
			}
			if done > 0 {
				early++ // a frame where an ETA would be noise
			}
			if strings.Contains(f, "left)") {
				t.Errorf("frame read at %s with %d of %d done estimates the time left: %q", c.at.Round(time.Millisecond), done, all, f)
			}
		}
	}
	if frames < 2 || early == 0 {
		t.Errorf("%d bar frames, %d of them within 1.5 s of the first with under 5 %% done; want some of each:\n%v", frames, early, chunks)
	}
}
