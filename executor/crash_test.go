package executor_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

const (
	crashEnvDB   = "JRETRY_CRASH_DB"
	crashEnvLog  = "JRETRY_CRASH_LOG"
	crashEnvLast = "JRETRY_CRASH_LAST" // set for the final child, which runs to the end
	crashRuns    = 1000
	crashKills   = 20
	crashWorkers = 8
	crashMax     = 3
	// crashLease is long beside the kills and the store's writes, so that
	// a kill, rarely a write slowed past half a lease by a loaded machine
	// (the race detector, other tests' processes), takes a claim away: the
	// test counts executions the store did not record, and a lost lease
	// adds one (which the final child counts in Stats.LostClaims). A
	// killed child's runs wait out its lease; the others go on meanwhile.
	crashLease = 5 * time.Second
	// crashNodeMs bounds a node's work (0 to crashNodeMs-1 ms, a function
	// of run, node and attempt): short enough that runs get through every
	// node while children are being killed, so kills land before, in and
	// after each node, the delay node and retries included.
	crashNodeMs = 20
	// crashReady is the line a child that is to be killed prints at each
	// node start.
	crashReady = "executing"
	// crashDone precedes the final child's Stats, as JSON, on its last line.
	crashDone = "child done: "
)

// crashPolicy retries every non-permanent failure after 10 ms.
var crashPolicy = retry.PolicyFunc(func(f retry.Failure) retry.Decision {
	if f.Permanent {
		return retry.Decision{Strategy: "none", Rule: "permanent"}
	}
	return retry.Decision{Retry: true, Delay: 10 * time.Millisecond, Strategy: "crash", Rule: "default"}
})

// TestCrashRecovery runs crashRuns journeys in a child process that is
// killed with SIGKILL at random moments crashKills times, restarted each
// time on the same SQLite file, then run to the end. The side-effect log the
// handlers append to (outside the store) shows that no node recorded as
// completed was executed again, and the store that every run ended, none
// lost, and no node retried beyond its max retries.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	dbPath, logPath := filepath.Join(dir, "runs.db"), filepath.Join(dir, "effects.log")
	store := openStore(t, dbPath)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range crashRuns {
		wg.Go(func() {
			_, err := store.Create(ctx, retry.NewRun{ID: fmt.Sprintf("run-%04d", i), JourneyID: "crash", JourneyVersion: 1,
				StartNodeID: "a", MaxRetries: crashMax, Input: json.RawMessage(fmt.Sprint(i))}, time.Now())
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	must(t, store.Close())

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	child := func(last bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), crashEnvDB+"="+dbPath, crashEnvLog+"="+logPath, fmt.Sprintf("%s=%v", crashEnvLast, last))
		cmd.Stderr = os.Stderr
		return cmd
	}
	for k := range crashKills {
		cmd := child(false)
		ready := &readySignal{ch: make(chan struct{}), want: 20 + rng.IntN(40)}
		cmd.Stdout = ready
		must(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// The kill comes once the child has started 20 to 59 nodes, and
		// up to 20 ms (a node's longest work) later: a count of work, not
		// a time, so the children do as much whether the machine is quiet
		// or loaded and the race detector slows SQLite tenfold (their
		// start-up, slower still, does not count). Twenty children end a
		// minority of the runs, so work never runs out before the last
		// kill; the checks below make sure the kills hit work.
		after := time.Duration(rng.IntN(crashNodeMs)) * time.Millisecond
		for _, wait := range []<-chan struct{}{ready.ch, afterCh(after)} {
			select {
			case err := <-exited:
				t.Fatalf("kill %d: the child ended before being killed: %v", k, err)
			case <-time.After(30 * time.Second): // watchdog
				t.Fatalf("kill %d: the child did not start executing", k)
			case <-wait:
			}
		}
		must(t, cmd.Process.Signal(syscall.SIGKILL))
		<-exited
	}
	pre := openStore(t, dbPath)
	counts, err := pre.CountByStatus(ctx)
	must(t, err)
	must(t, pre.Close())
	t.Logf("before the final run: %v", counts)
	final := child(true)
	var finalOut bytes.Buffer
	final.Stdout = io.MultiWriter(os.Stdout, &finalOut)
	done := make(chan error, 1)
	must(t, final.Start())
	go func() { done <- final.Wait() }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Minute): // watchdog: most of the work is left to this run, slow under -race
		final.Process.Kill()
		t.Fatal("the final run did not finish")
	}

	check := openStore(t, dbPath)
	defer check.Close()
	starts, finishes, boots := readEffects(t, logPath)
	recorded := map[effectKey]bool{}
	for i := range crashRuns {
		id := fmt.Sprintf("run-%04d", i)
		run, err := check.Get(ctx, id)
		if err != nil {
			t.Fatalf("run %s lost: %v", id, err)
		}
		if !run.Status.Terminal() {
			t.Errorf("run %s is %s", id, run.Status)
		}
		atts, err := check.Attempts(ctx, id)
		must(t, err)
		for _, a := range atts {
			if a.NodeAttempt > crashMax+1 {
				t.Errorf("run %s node %s: attempt %d beyond %d retries", id, a.NodeID, a.NodeAttempt, crashMax)
			}
			if a.NodeID == "wait" {
				continue // the built-in delay node has no side effects
			}
			key := effectKey{id, a.NodeID, a.NodeAttempt, a.ClaimToken}
			recorded[key] = true
			if starts[key] == 0 {
				t.Errorf("attempt %+v has no execution in the side-effect log", key)
			}
			if a.Outcome == retry.OutcomeSucceeded {
				// Nothing of this node may start after the recorded
				// success finished.
				for k, at := range starts {
					if k.run == id && k.node == a.NodeID && at > finishes[key] {
						t.Errorf("run %s node %s completed (attempt %d) but executed again (%+v)", id, a.NodeID, a.NodeAttempt, k)
					}
				}
			}
		}
	}
	// Only the nodes in flight at a kill may repeat: an execution with no
	// recorded attempt belongs to a killed child, at most one per worker of
	// that child, or to the final one, which found its claim lost when it
	// came to record the result and counted it.
	perChild := map[int]int{}
	for k, line := range starts {
		if recorded[k] {
			continue
		}
		child, _ := slices.BinarySearch(boots, line)
		perChild[child]++
	}
	total := 0
	for child, n := range perChild {
		total += n
		if child == len(boots) {
			if lost := finalStats(t, finalOut.Bytes()).LostClaims; int64(n) > lost {
				t.Errorf("the final, clean run did not record %d executions, and lost %d claims", n, lost)
			}
			continue
		}
		if n > crashWorkers {
			t.Errorf("child %d: %d executions not recorded, more than its %d workers", child, n, crashWorkers)
		}
	}
	t.Logf("%d executions without a recorded attempt over %d kills", total, crashKills)

	// The kills hit the work, not idle children: most cut a node half way
	// (a start with no finish), and runs went on in a later child past
	// their first node (after a completed node, a delay or a retry).
	type execution struct {
		line int
		node string
	}
	cut := map[int]bool{}
	byRun := map[string][]execution{}
	for k, line := range starts {
		if k.attempt > crashMax+1 {
			t.Errorf("execution %+v: attempt beyond %d retries", k, crashMax)
		}
		child, _ := slices.BinarySearch(boots, line)
		if finishes[k] == 0 && child < len(boots) {
			cut[child] = true
		}
		byRun[k.run] = append(byRun[k.run], execution{line, k.node})
	}
	resumed := 0
	for _, es := range byRun {
		slices.SortFunc(es, func(a, b execution) int { return a.line - b.line })
		first, _ := slices.BinarySearch(boots, es[0].line)
		for _, e := range es[1:] {
			if c, _ := slices.BinarySearch(boots, e.line); c != first && e.node != "a" {
				resumed++
				break
			}
		}
	}
	t.Logf("%d of %d kills cut a node; %d runs resumed past their first node in a later process", len(cut), crashKills, resumed)
	if len(cut) < crashKills/2 {
		t.Errorf("only %d of %d kills cut a node: the kills did not hit the work", len(cut), crashKills)
	}
	if resumed < crashRuns/10 {
		t.Errorf("only %d runs resumed past their first node in a later process; want at least %d", resumed, crashRuns/10)
	}
}

// finalStats reads the Stats the final child printed last.
func finalStats(t *testing.T, out []byte) executor.Stats {
	_, line, ok := bytes.Cut(out, []byte(crashDone))
	var s executor.Stats
	if !ok {
		t.Fatalf("the final child did not print %q", crashDone)
	}
	line, _, _ = bytes.Cut(line, []byte("\n"))
	must(t, json.Unmarshal(line, &s))
	return s
}

// readySignal is a child's standard output: it closes ch once the child
// has said want times that it started a node.
type readySignal struct {
	buf  bytes.Buffer
	want int
	ch   chan struct{}
}

func (r *readySignal) Write(p []byte) (int, error) {
	had := bytes.Count(r.buf.Bytes(), []byte(crashReady)) >= r.want
	r.buf.Write(p)
	if !had && bytes.Count(r.buf.Bytes(), []byte(crashReady)) >= r.want {
		close(r.ch)
	}
	return len(p), nil
}

// afterCh is time.After as a receive-only channel of struct{}.
func afterCh(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

type effectKey struct {
	run, node string
	attempt   int
	token     string
}

// readEffects reads the side-effect log: the line number of each execution's
// start and finish. A line cut by a kill is ignored.
//
// boots are the line numbers of each child's "boot" line, in order.
func readEffects(t *testing.T, path string) (starts, finishes map[effectKey]int, boots []int) {
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	starts, finishes = map[effectKey]int{}, map[effectKey]int{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if sc.Text() == "boot" {
			boots = append(boots, line)
			continue
		}
		var what string
		var k effectKey
		if n, _ := fmt.Sscanf(sc.Text(), "%s %s %s %d %s", &what, &k.run, &k.node, &k.attempt, &k.token); n != 5 {
			continue
		}
		switch what {
		case "start":
			if starts[k] != 0 {
				t.Errorf("execution %+v started twice under one claim", k)
			}
			starts[k] = line
		case "finish":
			finishes[k] = line
		}
	}
	must(t, sc.Err())
	return starts, finishes, boots[1:] // a child's executions precede the next boot
}

// TestHelperProcess is the crash test's child: it executes the runs of the
// SQLite file until every one has ended. It is not a test of its own.
func TestHelperProcess(t *testing.T) {
	dbPath := os.Getenv(crashEnvDB)
	if dbPath == "" {
		t.Skip("the crash test's child process")
	}
	logf, err := os.OpenFile(os.Getenv(crashEnvLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	_, err = fmt.Fprintln(logf, "boot")
	must(t, err)
	// A child to be killed says so at each node start, which the parent
	// counts: not when Run begins, whose start-up (rebuild, the first
	// sweep's claim) is slow under the race detector, and a kill during it
	// would hit no work.
	last := os.Getenv(crashEnvLast) == "true"
	effect := func(what string, in executor.NodeInput) {
		if _, err := fmt.Fprintf(logf, "%s %s %s %d %s\n", what, in.Run.ID, in.Node.ID, in.Attempt, in.Run.ClaimToken); err != nil {
			panic(err)
		}
		if what == "start" && !last {
			fmt.Println(crashReady)
		}
	}
	store := openStore(t, dbPath)
	sched, err := memory.New(memory.Config{Lease: time.Second})
	must(t, err)
	ex, err := executor.New(executor.Config{Workers: crashWorkers, Lease: crashLease, SweepSpec: "@every 1s",
		SweepGrace: 50 * time.Millisecond, Mode: executor.ModeFull, ShutdownTimeout: time.Second}, store, sched, crashPolicy)
	must(t, err)
	must(t, ex.Handle("effect", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		effect("start", in)
		h := fnv.New64a()
		fmt.Fprint(h, in.Run.ID, in.Node.ID, in.Attempt)
		x := h.Sum64()
		select {
		case <-time.After(time.Duration(x%crashNodeMs) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		effect("finish", in)
		switch {
		case x%100 < 3:
			return nil, retry.Permanent(errors.New("bad patient data"))
		case x%100 < 40:
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
		}
		return json.RawMessage(fmt.Sprintf(`{"node":%q}`, in.Node.ID)), nil
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "crash", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "effect", Next: "b"},
		{ID: "b", Type: "effect", Next: "wait"},
		{ID: "wait", Type: executor.NodeTypeDelay, Config: json.RawMessage(`{"delayMs":50}`), Next: "c"},
		{ID: "c", Type: "effect"},
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(ctx) }()
	if !last {
		time.Sleep(time.Hour) // until killed, even with no work left
	}
	insp, err := openInspector(dbPath)
	must(t, err)
	for {
		counts, err := insp.CountByStatus(context.Background())
		must(t, err)
		if counts[retry.StatusCompleted]+counts[retry.StatusFailed]+counts[retry.StatusFailedMaxRetries] == crashRuns {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	insp.Close()
	cancel()
	must(t, <-errc)
	stats, err := json.Marshal(ex.Stats())
	must(t, err)
	fmt.Printf("%s%s\n", crashDone, stats)
}
