// Package executor runs journeys node by node on a [retry.Store], a
// [retry.Scheduler] and a [retry.Policy]: it records every completed node so a
// resumed run continues from its last successful node, turns node errors into
// durable retries (written to the store before the scheduler hears of them),
// wakes retries and delay nodes through the scheduler, and recovers the runs
// of crashed workers with a periodic sweeper.
//
// # Ownership
//
// Who opens a resource closes it: the executor uses the store and the
// scheduler it is given and never closes them. Close them after Run has
// returned (package engine's Engine does, for what it opened). A store
// stays usable after the executor stops, to read what the runs did.
//
// # Guarantees
//
// One worker at a time per run: a run is claimed in the store before it is
// executed, every write is conditional on the claim, and a worker that lost
// its claim abandons the run without writing. No node starts on less than
// half a lease by the executor's clock, so that a claim that expired while
// the store answered is never executed. Node execution is at-least-once
// (see [Handler]).
//
// Back-pressure: wake-ups due while every worker is busy wait in the
// scheduler, where other processes sharing it can take them. Every
// delivery the executor claims has a worker waiting for it: Run claims
// for the free workers it has taken, and a run writing its last result
// (it ends or parks) may claim one more for its own worker when earlier
// Claims found a backlog, so that a networked scheduler's round trip
// overlaps the write. The deliveries held and not yet started never
// outnumber Config.Workers.
package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/robfig/cron/v3"

	"github.com/journeyretry/journeyretry/retry"
)

// ErrUnknownJourney is returned by StartRun for a journey id that was never
// registered.
var ErrUnknownJourney = errors.New("unknown journey")

// Executor executes journey runs. Create it with [New], register handlers
// and journeys, then call [Executor.Run]. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	store retry.Store
	sched retry.Scheduler
	pol   retry.Policy
	// On one SQL database (retry.SameDatabase), a failure's wake-up is
	// written in the transaction that records it; otherwise both are nil.
	txStore retry.TxStore
	txSched retry.TxScheduler

	mu       sync.RWMutex
	journeys map[string]map[int]*Journey // id -> version -> journey
	latest   map[string]int
	handlers map[string]Handler

	slots     chan struct{} // worker pool: one token per executing run
	slotFreed chan struct{}
	consuming atomic.Bool // Run's loop claims wake-ups: slots may claim ahead
	backlog   atomic.Bool // the last Claim was full: more may be due
	ahead     atomic.Bool // a claimAhead's Claim is in flight
	inflight  sync.WaitGroup

	running  atomic.Bool
	stopping chan struct{} // closed when shutdown begins: take no new work
	stopOnce sync.Once
	stopMu   sync.RWMutex    // orders admit against beginStop
	hardCtx  context.Context // cancelled when the shutdown grace period ends
	hardStop context.CancelFunc

	waiters   waiters
	valuesMu  sync.RWMutex
	runValues context.Context // Run's context, without its cancellation

	errMu sync.Mutex
	errs  *multierror.Error // release failures during shutdown

	hooks *hooks
	stats stats
}

// New returns an Executor over store, sched and pol (the default policy, for
// nodes and journeys without their own). The caller keeps ownership of store
// and sched (see the package doc).
func New(cfg Config, store retry.Store, sched retry.Scheduler, pol retry.Policy) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("executor config: %w", err)
	}
	if store == nil || sched == nil || pol == nil {
		return nil, fmt.Errorf("executor: %w: store, scheduler and policy are required", retry.ErrInvalidArgument)
	}
	cfg = cfg.WithDefaults()
	hard, cancel := context.WithCancel(context.Background())
	txStore, txSched, _ := retry.SameDatabase(store, sched)
	return &Executor{
		cfg: cfg, store: store, sched: sched, pol: pol, txStore: txStore, txSched: txSched,
		journeys:  map[string]map[int]*Journey{},
		latest:    map[string]int{},
		handlers:  map[string]Handler{},
		slots:     make(chan struct{}, cfg.Workers),
		slotFreed: make(chan struct{}, 1),
		stopping:  make(chan struct{}),
		hardCtx:   hard,
		hardStop:  cancel,
		runValues: context.Background(),
		hooks:     newHooks(cfg.Hooks, cfg.Logger),
	}, nil
}

// Handle registers the handler of a node type. Register handlers before the
// journeys that use them; a type may be registered once.
func (e *Executor) Handle(nodeType string, h Handler) error {
	if nodeType == "" || nodeType == NodeTypeDelay || h == nil {
		return fmt.Errorf("handle %q: %w: want a non-empty type other than %q and a handler", nodeType, retry.ErrInvalidArgument, NodeTypeDelay)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.handlers[nodeType]; dup {
		return fmt.Errorf("handle %q: %w: type already registered", nodeType, retry.ErrInvalidArgument)
	}
	e.handlers[nodeType] = h
	return nil
}

// RegisterJourney validates j and registers it. A bad definition gets an
// error naming the node and registers nothing: unknown next or branch
// targets, duplicate node ids, a missing start, a node type with no handler,
// a bad delay config, or a cycle (a delay-then-retry loop is a cycle too;
// retries belong to the policy). Registering an id and version twice is an
// error: a stored run pins its version, which must not change under it.
func (e *Executor) RegisterJourney(j Journey) error {
	j.Nodes = append([]Node(nil), j.Nodes...)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := j.validate(func(t string) bool { return e.handlers[t] != nil }); err != nil {
		return fmt.Errorf("register journey: %w", err)
	}
	if e.journeys[j.ID][j.Version] != nil {
		return fmt.Errorf("register journey %s: version %d already registered", j.ID, j.Version)
	}
	if e.journeys[j.ID] == nil {
		e.journeys[j.ID] = map[int]*Journey{}
	}
	e.journeys[j.ID][j.Version] = &j
	e.latest[j.ID] = max(e.latest[j.ID], j.Version)
	return nil
}

// journey returns the definition a run of id at version executes, nil
// when none is registered.
func (e *Executor) journey(id string, version int) *Journey {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.journeys[id][version]
}

// Versions returns the latest registered version of each journey id, the
// one StartRun uses. A program adopting legacy runs at cutover passes it to
// storage's Store.AdoptLegacy once it has registered the journeys its
// workers run, so each adopted row pins that version like any new run.
func (e *Executor) Versions() map[string]int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return maps.Clone(e.latest)
}

// StartOption modifies StartRun.
type StartOption func(*retry.NewRun)

// WithRunID gives the run its id (the store generates one otherwise).
func WithRunID(id string) StartOption { return func(nr *retry.NewRun) { nr.ID = id } }

// WithoutRetry creates the run with retry_enabled false: it is never retried.
func WithoutRetry() StartOption { return func(nr *retry.NewRun) { nr.DisableRetry = true } }

// Deferred creates the run unclaimed and due now instead of executing it:
// any worker's sweeper (or this executor's scheduler, which is told) picks
// it up. A "start" command whose runs "worker" processes execute uses it.
func Deferred() StartOption { return func(nr *retry.NewRun) { nr.Lease = 0; nr.Worker = "" } }

// StartRun creates a run of the latest version of journeyID with input and,
// unless [Deferred], claims it for this worker and hands it to the worker
// pool, waiting for a free worker if all are busy (or until ctx ends or
// shutdown begins). It returns the run as created, without waiting for it
// to execute: [Executor.Wait] waits for its end. The handlers of its first
// execution get a context carrying ctx's values, not its cancellation (the
// run outlives the call); Close cancels them. A claim the store handed
// back with less than half the lease left is released instead (see
// [Stats].ShortClaims) and the run scheduled at once.
func (e *Executor) StartRun(ctx context.Context, journeyID string, input []byte, opts ...StartOption) (retry.Run, error) {
	return e.start(ctx, journeyID, input, opts, false)
}

// StartRunSync is StartRun executing the run in the calling goroutine, under
// ctx, taking a worker slot, until it completes, ends, or is parked (a retry
// with a delay or a delay node, which Run's scheduler loop resumes). It
// returns the run as last written. Zero-delay retries run at once. A test or
// a batch step that wants the outcome in line uses it.
func (e *Executor) StartRunSync(ctx context.Context, journeyID string, input []byte, opts ...StartOption) (retry.Run, error) {
	return e.start(ctx, journeyID, input, opts, true)
}

// start is StartRun, or StartRunSync when sync.
func (e *Executor) start(ctx context.Context, journeyID string, input []byte, opts []StartOption, sync bool) (retry.Run, error) {
	nr, err := e.newRun(journeyID, input, opts)
	if err != nil {
		return retry.Run{}, fmt.Errorf("start run: %w", err)
	}
	if nr.Lease == 0 {
		return e.startDeferred(ctx, nr)
	}
	if !e.acquire(ctx) {
		return retry.Run{}, fmt.Errorf("start run: %w", cmpErr(ctx.Err(), retry.ErrClosed))
	}
	run, err := e.store.Create(ctx, nr, e.now())
	if err != nil {
		e.release()
		return retry.Run{}, fmt.Errorf("start run: %w", err)
	}
	e.stats.started.Add(1)
	sl := e.taken()
	if sync {
		defer sl.release()
		return e.executeRun(ctx, sl, run), nil
	}
	work := e.detach(ctx)
	go func() {
		defer sl.release()
		e.executeRun(work, sl, run)
	}()
	return run, nil
}

// newRun is the run StartRun creates: the latest version of journeyID,
// claimed for this worker unless an option says otherwise.
func (e *Executor) newRun(journeyID string, input []byte, opts []StartOption) (retry.NewRun, error) {
	e.mu.RLock()
	v := e.latest[journeyID]
	j := e.journeys[journeyID][v]
	e.mu.RUnlock()
	if j == nil {
		return retry.NewRun{}, fmt.Errorf("%w: %q", ErrUnknownJourney, journeyID)
	}
	nr := retry.NewRun{
		JourneyID: j.ID, JourneyVersion: j.Version, StartNodeID: j.Start, Input: input,
		MaxRetries: maxRetries(e.policyFor(j, nil)), Worker: e.cfg.Worker, Lease: e.cfg.Lease,
	}
	for _, o := range opts {
		o(&nr)
	}
	return nr, nil
}

// startDeferred creates a Deferred run and tells the scheduler it is due.
func (e *Executor) startDeferred(ctx context.Context, nr retry.NewRun) (retry.Run, error) {
	run, err := e.store.Create(ctx, nr, e.now())
	if err != nil {
		return retry.Run{}, fmt.Errorf("start run: %w", err)
	}
	e.scheduleDeferred(ctx, run)
	return run, nil
}

// scheduleDeferred tells the scheduler that run, just created Deferred, is
// due. A failure is logged: the sweeper finds the run anyway.
func (e *Executor) scheduleDeferred(ctx context.Context, run retry.Run) {
	if err := e.sched.Schedule(context.WithoutCancel(ctx), run.ID, run.CreatedAt); err != nil && !errors.Is(err, retry.ErrClosed) {
		e.backendError("schedule deferred run", err, "run", run.ID)
	}
}

// scheduleMany tells the scheduler that runs, just created Deferred, are
// due: in one call when it is a [retry.BatchScheduler] and they were
// created at one time (by one CreateMany), else one Schedule each.
func (e *Executor) scheduleMany(ctx context.Context, runs []retry.Run) {
	bs, ok := e.sched.(retry.BatchScheduler)
	ids := make([]string, len(runs))
	for i, r := range runs {
		ok = ok && r.CreatedAt.Equal(runs[0].CreatedAt)
		ids[i] = r.ID
	}
	if !ok || len(runs) == 0 {
		for _, run := range runs {
			e.scheduleDeferred(ctx, run)
		}
		return
	}
	if err := bs.ScheduleMany(context.WithoutCancel(ctx), ids, runs[0].CreatedAt); err != nil && !errors.Is(err, retry.ErrClosed) {
		e.backendError("schedule deferred runs", err, "runs", len(ids), "first", ids[0])
	}
}

// StartManyBatch is how many runs [Executor.StartMany] writes in one
// transaction: enough that the commit's cost is shared by many runs, few
// enough that one transaction does not hold a SQLite store's single
// writer, which other workers' writes wait for, for long.
const StartManyBatch = 1000

// Start is one run for [Executor.StartMany].
type Start struct {
	JourneyID string
	Input     []byte
	// Options are StartRun's; StartMany creates the run [Deferred]
	// whatever they say.
	Options []StartOption
}

// StartMany creates the runs of starts, each as StartRun with [Deferred]
// does (unclaimed, due now, the scheduler told), and returns them in
// order. A batch job starting thousands of runs uses it: on a store that
// is a [retry.BatchCreator] it writes [StartManyBatch] runs per
// transaction, where StartRun costs a transaction (and a round trip) per
// run; on any other store it creates them one at a time. A scheduler that
// is a [retry.BatchScheduler] is told of each batch in one call.
//
// An unknown journey fails before anything is written. Otherwise a
// failure stops it, and it returns the runs created until then with the
// error: the batches before the failing one stay created, the failing
// batch writes none of its runs (on a store without batches, the runs
// before the failing one stay created), and the later ones are not tried.
// A duplicate id wraps [retry.ErrDuplicateRun] and names the id. When ctx
// ends, it stops between two batches (a batch the store has begun writing
// is written and returned).
func (e *Executor) StartMany(ctx context.Context, starts []Start) ([]retry.Run, error) {
	nrs := make([]retry.NewRun, len(starts))
	for i, s := range starts {
		nr, err := e.newRun(s.JourneyID, s.Input, append(s.Options[:len(s.Options):len(s.Options)], Deferred()))
		if err != nil {
			return nil, fmt.Errorf("start runs: run %d: %w", i, err)
		}
		nrs[i] = nr
	}
	bc, batched := e.store.(retry.BatchCreator)
	runs := make([]retry.Run, 0, len(nrs))
	for len(nrs) > 0 {
		n := min(len(nrs), StartManyBatch)
		var batch []retry.Run
		var err error
		if batched {
			batch, err = bc.CreateMany(ctx, nrs[:n], e.now())
		} else {
			for _, nr := range nrs[:n] {
				var run retry.Run
				if run, err = e.store.Create(ctx, nr, e.now()); err != nil {
					break
				}
				batch = append(batch, run)
			}
		}
		e.scheduleMany(ctx, batch)
		runs = append(runs, batch...)
		if err != nil {
			return runs, fmt.Errorf("start runs: %w", err)
		}
		nrs = nrs[n:]
	}
	return runs, nil
}

// executeRun executes a claimed run in worker slot sl and wakes the callers
// of Wait once it has ended.
func (e *Executor) executeRun(ctx context.Context, sl *slot, run retry.Run) retry.Run {
	run = e.execute(ctx, sl, run)
	if run.Status.Terminal() {
		e.waiters.wake(run.ID)
	}
	return run
}

// maxRetries is the retry limit new runs under p keep: the policy's own
// (retry.Limit), or MaxRetriesDefault.
func maxRetries(p retry.Policy) int {
	if l, ok := p.(retry.Limit); ok {
		return max(l.MaxRetries(), retry.Unlimited)
	}
	return MaxRetriesDefault
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// acquire takes a worker slot, or fails when ctx ends or shutdown begins.
func (e *Executor) acquire(ctx context.Context) bool {
	select {
	case e.slots <- struct{}{}:
		return e.admit()
	case <-ctx.Done():
	case <-e.stopping:
	}
	return false
}

// admit counts a slot just taken as in flight unless shutdown has begun
// (then the slot is given back): no work is added once shutdown waits.
func (e *Executor) admit() bool {
	e.stopMu.RLock()
	defer e.stopMu.RUnlock()
	if e.stopped() {
		<-e.slots
		return false
	}
	e.inflight.Add(1)
	return true
}

// beginStop closes stopping; after it, admit lets nothing in.
func (e *Executor) beginStop() {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	e.stopOnce.Do(func() { close(e.stopping) })
}

// release gives back a slot that acquire took and ends its work.
func (e *Executor) release() {
	e.freeSlot()
	e.inflight.Done()
}

// freeSlot gives back a worker slot, and tells the consume loop.
func (e *Executor) freeSlot() {
	<-e.slots
	select {
	case e.slotFreed <- struct{}{}:
	default:
	}
}

// slot is the worker slot of one execution, taken by acquire, used by one
// goroutine. The execution frees it as soon as it will run no more nodes
// (a parked run, before it tells the scheduler: on a networked scheduler
// that is a round trip, which another run's node need not wait for), and
// release ends the work the slot counted in flight, that call included:
// shutdown waits for it, so the scheduler is told before Run returns.
//
// A slot whose run is writing its last result may have claimed the
// delivery that takes it next (claimAhead): free then hands the slot to
// that delivery instead of giving it back to the pool.
type slot struct {
	e     *Executor
	freed bool
	next  chan []retry.Delivery // claimAhead's Claim, nil when none was sent
}

// taken is the slot acquire just took.
func (e *Executor) taken() *slot { return &slot{e: e} }

// free gives the slot back to the pool, or to the delivery claimed ahead
// for it; the work stays in flight.
func (s *slot) free() {
	if s.freed {
		return
	}
	s.freed = true
	if s.next != nil {
		if ds := <-s.next; len(ds) == 1 && s.e.handOff(ds[0]) {
			return
		}
	}
	s.e.freeSlot()
}

// claimAhead claims, while Run consumes wake-ups and the last Claim found
// more due than it asked for, one delivery for this slot, whose run is
// about to write its last result (it ends or parks, and runs no more
// nodes here). The Claim's round trip overlaps that write, so on a
// networked scheduler a backlog of due retries does not leave the slot
// idle for it. The delivery waits for this slot only (free hands it
// over): the executor still holds no delivery without a worker for it.
// One such Claim is in flight at a time: with many workers, slots free
// often enough for Run's loop to claim in batches, where a Claim of one
// per finishing run would multiply the round trips.
func (s *slot) claimAhead() {
	e := s.e
	if s.next != nil || s.freed || !e.consuming.Load() || !e.backlog.Load() || e.stopped() || !e.ahead.CompareAndSwap(false, true) {
		return
	}
	s.next = make(chan []retry.Delivery, 1)
	go func() {
		now := e.now()
		ds, err := e.sched.Claim(e.hardCtx, now, 1)
		e.ahead.Store(false)
		if err != nil {
			ds = nil // the consume loop claims, and reports, once the slot is free
		}
		e.backlog.Store(len(ds) == 1)
		if len(ds) == 1 {
			e.stats.deliveries.Add(1)
			e.emit(Woke{RunID: ds[0].ID, At: ds[0].At, FiredAt: now})
		}
		s.next <- ds
	}()
}

// handOff executes d in a new goroutine in the slot its caller's execution
// just freed, unless shutdown has begun (then d is dropped: an
// unacknowledged delivery is handed out again after the scheduler's lease).
func (e *Executor) handOff(d retry.Delivery) bool {
	e.stopMu.RLock()
	defer e.stopMu.RUnlock()
	if e.stopped() {
		return false
	}
	e.inflight.Add(1) // within the caller's count: never after shutdown's Wait began
	next := e.taken()
	go func() {
		defer next.release()
		e.wake(next, d)
	}()
	return true
}

// release frees the slot if the execution did not, and ends its work.
func (s *slot) release() {
	s.free()
	s.e.inflight.Done()
}

func (e *Executor) now() time.Time { return e.cfg.Now() }

func (e *Executor) stopped() bool {
	select {
	case <-e.stopping:
		return true
	default:
		return false
	}
}

// Run rebuilds the scheduler from the store unless it is durable
// ([retry.DurableScheduler]; a failure is logged, not fatal: the sweeper
// covers), starts the sweeper, and executes wake-ups
// until ctx is cancelled, rebuilding the scheduler whenever it reports a
// loss ([retry.LossReporter]). Then it shuts down gracefully:
// it takes no new work, waits up to Config.ShutdownTimeout for in-flight
// nodes (then cancels them), releases their claims, waits for the hooks as
// [Executor.Close] does, and returns every error of these steps combined (github.com/hashicorp/go-multierror). A cancelled
// ctx is not an error. It closes neither the store nor the scheduler.
//
// The handlers of the runs it resumes (wake-ups and sweeps) get a context
// carrying ctx's values, not its cancellation: a shutdown lets them finish
// within ShutdownTimeout, then cancels them.
func (e *Executor) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return fmt.Errorf("run: %w: already running", retry.ErrInvalidArgument)
	}
	e.setRunValues(ctx) // handlers of the runs it resumes see ctx's values
	var errs *multierror.Error
	// A scheduler that cannot be rebuilt (Redis down) is no reason to stop:
	// the store holds every run, and the sweeper takes what the scheduler
	// misses. A durable one keeps its entries across restarts: rebuilding
	// it on every start would only make other processes' deliveries stale.
	var (
		lost   <-chan struct{}
		failed bool // the rebuild on start failed
	)
	if lr, ok := e.sched.(retry.LossReporter); ok {
		lost = lr.Lost()
	}
	if ds, ok := e.sched.(retry.DurableScheduler); !ok || !ds.Durable() {
		// A loss reported before this rebuild (an empty Redis at the
		// first start looks lost) is repaired by it.
		select {
		case <-lost:
		default:
		}
		switch n, err := e.rebuild(ctx); {
		case err != nil && ctx.Err() == nil:
			e.backendError("rebuild scheduler; the sweeper covers what it misses", err)
			failed = lost != nil // a loss reporter's rebuild is tried again
		case err == nil && n > 0: // a Redis flushed while every process was down, say
			e.cfg.Logger.Info("rebuilt the scheduler from the store", "wakeups", n)
		}
	}
	if lost != nil {
		go e.rebuildOnLoss(ctx, lost, failed)
	}
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	sweep := func() {
		// Not ctx: a sweep stops between claims when shutdown begins,
		// but a store call in flight is not abandoned half way.
		if _, err := e.SweepOnce(e.hardCtx); err != nil && !e.stopped() {
			e.backendError("sweep", err)
		}
	}
	if _, err := c.AddFunc(e.cfg.SweepSpec, sweep); err != nil {
		return e.shutdown(multierror.Append(errs, fmt.Errorf("sweeper: %w", err)), nil)
	}
	c.Start()
	go sweep() // recover expired leases and deferred runs at once
	if err := e.consume(ctx); err != nil {
		errs = multierror.Append(errs, err)
	}
	return e.shutdown(errs, c)
}

// consume claims due wake-ups, as many as there are free workers, until ctx
// ends. Meanwhile a run about to end or park may claim the wake-up that
// takes its worker next (slot.claimAhead).
func (e *Executor) consume(ctx context.Context) error {
	e.consuming.Store(true)
	defer e.consuming.Store(false)
	ready := e.sched.Ready()
	for {
		if err := e.claimWakeups(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, retry.ErrClosed) {
				return fmt.Errorf("scheduler: %w", err)
			}
			e.backendError("claim wake-ups", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ready:
			if !ok {
				return fmt.Errorf("scheduler: %w", retry.ErrClosed)
			}
		case <-e.slotFreed:
		}
	}
}

// claimWakeups takes every free worker slot, claims as many due wake-ups
// and executes them, until fewer are due. The slots are taken before the
// Claim, so that a delivery never waits for a worker that a StartRun or a
// sweep took during the Claim's round trip: with claimAhead's, the
// deliveries the executor holds unstarted never outnumber its workers.
func (e *Executor) claimWakeups(ctx context.Context) error {
	for ctx.Err() == nil {
		n := 0
		for n < cap(e.slots) && e.acquireNow() {
			n++
		}
		if n == 0 {
			return nil
		}
		now := e.now()
		ds, err := e.sched.Claim(ctx, now, n)
		ds = ds[:min(len(ds), n)] // more than asked for: redelivered after the lease
		for range n - len(ds) {   // not e.release: no slotFreed, which would claim again
			<-e.slots
			e.inflight.Done()
		}
		if err != nil {
			return err
		}
		e.backlog.Store(len(ds) == n)
		e.stats.deliveries.Add(int64(len(ds)))
		for _, d := range ds {
			e.emit(Woke{RunID: d.ID, At: d.At, FiredAt: now})
			sl := e.taken()
			go func() {
				defer sl.release()
				e.wake(sl, d)
			}()
		}
		if len(ds) < n {
			return nil
		}
	}
	return nil
}

// wake claims the run of one delivery and executes it in slot sl.
//
// The delivery is acknowledged beside the execution, not before it: on a
// networked scheduler the Ack is a round trip that the node need not wait
// for. That is safe because an Ack with a stale token removes nothing
// ([retry.Delivery]): one that lands after the execution rescheduled the
// run leaves the new entry alone. Shutdown waits for it (it counts in
// flight), so it is sent before Run returns and the scheduler is closed.
func (e *Executor) wake(sl *slot, d retry.Delivery) {
	ctx := e.workCtx()
	run, err := e.store.ClaimRun(ctx, d.ID, e.cfg.Worker, e.now(), e.cfg.Lease)
	if err != nil && !errors.Is(err, retry.ErrNotFound) && !errors.Is(err, retry.ErrNotClaimable) {
		e.backendError("claim woken run", err, "run", d.ID)
		return // not acknowledged: the scheduler hands it out again
	}
	e.inflight.Add(1) // within this slot's count: never after shutdown's Wait began
	go func() {
		defer e.inflight.Done()
		// Not ctx: a hard stop cancels the execution, not its Ack.
		if err := e.sched.Ack(context.WithoutCancel(ctx), d); err != nil && !errors.Is(err, retry.ErrClosed) {
			e.backendError("ack wake-up", err, "run", d.ID)
		}
	}()
	if err != nil {
		e.stats.wasted.Add(1)
		return
	}
	e.stats.resumed.Add(1)
	e.executeRun(ctx, sl, run)
}

// rebuildOnLoss rebuilds the scheduler each time it reports lost entries
// (a Redis flushed or restarted empty), until ctx ends or lost is closed.
// A rebuild that fails (the backend down again, or still loading) is tried
// again after rebuildRetry, the wait doubling up to rebuildRetryMax, until
// one succeeds: a scheduler reports a loss once, so nothing else would
// bring its entries back, and meanwhile the sweeper runs what is due.
// failed says the rebuild on start failed.
func (e *Executor) rebuildOnLoss(ctx context.Context, lost <-chan struct{}, failed bool) {
	wait := rebuildRetry
	var again <-chan time.Time // the next try of a failed rebuild; nil for none
	if failed {
		again = time.After(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-lost:
			if !ok {
				return
			}
		case <-again:
		}
		again = nil
		n, err := e.rebuild(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			e.backendError("rebuild lost scheduler entries; trying again, the sweeper covers what it misses", err, "in", wait)
			again = time.After(wait)
			wait = min(2*wait, rebuildRetryMax)
		case err == nil:
			e.cfg.Logger.Warn("the scheduler lost its entries: rebuilt them from the store", "wakeups", n)
			wait = rebuildRetry
		}
	}
}

// The waits before a failed rebuild of a lost scheduler is tried again.
const (
	rebuildRetry    = time.Second
	rebuildRetryMax = 30 * time.Second
)

// Rebuild schedules every retrying and waiting run of the store: after a
// restart the scheduler knows nothing. Run calls it first, and again each
// time a [retry.LossReporter] scheduler reports a loss. A shared scheduler
// ([retry.SharedScheduler]) is given only the entries it lacks (Restore),
// so that an outstanding delivery of another process does not go stale.
func (e *Executor) Rebuild(ctx context.Context) error {
	_, err := e.rebuild(ctx)
	return err
}

// rebuild is Rebuild, counting the wake-ups it gave the scheduler.
func (e *Executor) rebuild(ctx context.Context) (int, error) {
	const page = 1000
	total := 0
	put := e.sched.Schedule
	if ss, ok := e.sched.(retry.SharedScheduler); ok && ss.Shared() {
		put = ss.Restore
	}
	after := ""
	for {
		ws, err := e.store.ListWakeups(ctx, after, page)
		if err != nil {
			return total, fmt.Errorf("rebuild scheduler: %w", err)
		}
		for _, w := range ws {
			if err := put(ctx, w.RunID, w.At); err != nil {
				return total, fmt.Errorf("rebuild scheduler: schedule %s: %w", retry.QuoteID(w.RunID), err)
			}
		}
		e.stats.rebuilt.Add(int64(len(ws)))
		total += len(ws)
		if len(ws) == 0 {
			return total, nil
		}
		after = ws[len(ws)-1].RunID
	}
}

// SweepResult is what one sweep caught.
type SweepResult struct {
	// Caught counts the runs the sweep claimed: retries and wake-ups the
	// scheduler missed (still unclaimed Config.SweepGrace after their
	// time), deferred and replayed runs, and runs whose lease expired.
	Caught int
}

// SweepOnce claims every run of the store that was due Config.SweepGrace
// ago or earlier (up to the free workers at a time) and executes them,
// returning when they have run. The sweeper calls it on Config.SweepSpec;
// tests call it directly.
func (e *Executor) SweepOnce(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil && !e.stopped() {
		if !e.acquire(ctx) {
			break
		}
		n := 1
		for n < cap(e.slots) && e.acquireNow() {
			n++
		}
		now := e.now()
		runs, err := e.store.ClaimDue(ctx, e.cfg.Worker, now.Add(-e.cfg.SweepGrace), now, e.cfg.Lease, n)
		for range n - len(runs) {
			e.release()
		}
		if err != nil {
			return res, fmt.Errorf("sweep: %w", err)
		}
		res.Caught += len(runs)
		e.stats.sweeperCaught.Add(int64(len(runs)))
		e.emit(Swept{Caught: len(runs)})
		for _, run := range runs {
			e.emit(e.rescued(run))
			wg.Add(1)
			sl := e.taken()
			go func() {
				defer wg.Done()
				defer sl.release()
				e.executeRun(e.workCtx(), sl, run)
			}()
		}
		if len(runs) < n {
			break
		}
	}
	return res, nil
}

func (e *Executor) acquireNow() bool {
	select {
	case e.slots <- struct{}{}:
		return e.admit()
	default:
		return false
	}
}

// shutdown stops taking work and waits for the work in flight, the
// sweeper's included, up to Config.ShutdownTimeout; then it cancels what
// still runs (its claims are released).
func (e *Executor) shutdown(errs *multierror.Error, sweeper *cron.Cron) error {
	e.beginStop() // a sweep in progress stops between claims
	t := time.AfterFunc(e.cfg.ShutdownTimeout, e.hardStop)
	if sweeper != nil {
		<-sweeper.Stop().Done() // its SweepOnce waits for the runs it started
	}
	e.inflight.Wait()
	t.Stop()
	e.errMu.Lock()
	errs = multierror.Append(errs, e.errs.WrappedErrors()...)
	e.errMu.Unlock()
	e.Close()
	return errs.ErrorOrNil()
}

// Close stops taking work: StartRun and SweepOnce refuse from now on with
// retry.ErrClosed, and nodes still running under it are cancelled. Then
// it waits up to Config.ShutdownTimeout for the hooks to handle the events
// already queued, and cancels their context; later events are dropped.
// Run calls it last; call it yourself when Run was never called. It closes
// neither the store nor the scheduler, is idempotent and returns nil.
func (e *Executor) Close() error {
	e.beginStop()
	e.hardStop()
	e.hooks.close(e.cfg.ShutdownTimeout)
	return nil
}

// HookStats returns the counters of each of Config.Hooks, in its order:
// a hook whose Dropped grows is slower than the events.
func (e *Executor) HookStats() []HookStats { return e.hooks.stats() }

// emit tells the Observer of ev, then queues it for the hooks. A panic of
// the Observer is logged: a counter's bug does not stop a worker.
func (e *Executor) emit(ev Event) {
	defer func() {
		if p := recover(); p != nil {
			e.cfg.Logger.Error("observer panicked", "event", fmt.Sprintf("%T", ev), "panic", p)
		}
	}()
	e.hooks.offer(ev)
	e.cfg.Observer.Observe(ev)
}

// rescued is the event of a run a sweep claimed.
func (e *Executor) rescued(run retry.Run) RunRescued {
	ev := RunRescued{RunID: run.ID, JourneyID: run.JourneyID, NodeID: run.CurrentNodeID}
	if j := e.journey(run.JourneyID, run.JourneyVersion); j != nil && j.byID[run.CurrentNodeID] != nil {
		ev.NodeType = j.byID[run.CurrentNodeID].Type
	}
	return ev
}

// backendError logs a store or scheduler call that failed where the store
// or the sweeper recovers the work, and emits it.
func (e *Executor) backendError(op string, err error, args ...any) {
	e.cfg.Logger.Warn(op, append(args, "err", err)...)
	e.emit(BackendError{Op: op, Err: err})
}

func (e *Executor) addErr(err error) {
	e.errMu.Lock()
	e.errs = multierror.Append(e.errs, err)
	e.errMu.Unlock()
}

// Stats are counters since New.
type Stats struct {
	// Started counts runs started by StartRun (not Deferred).
	Started int64
	// Resumed counts wake-ups that claimed their run.
	Resumed int64
	// Rebuilt counts the entries scheduled again from the store by Rebuild.
	Rebuilt int64
	// SweeperCaught counts the runs sweeps claimed.
	SweeperCaught int64
	// Attempts counts node executions; Succeeded, Failed and Snoozed
	// their outcomes as recorded.
	Attempts, Succeeded, Failed, Snoozed int64
	// Retries counts failures recorded for a retry; Immediate those
	// retried at once under the claim the store kept (zero delay).
	Retries, Immediate int64
	// Deferred counts the retries a retry budget deferred (among Retries).
	Deferred int64
	// LostClaims counts runs abandoned because their claim was lost.
	LostClaims int64
	// Cancelled counts runs abandoned because an operator cancelled them
	// ([retry.Operator.Cancel]) while this executor held them: the node in
	// flight was stopped and nothing of it recorded.
	Cancelled int64
	// ShortClaims counts claims released unused because the store handed
	// them back, or extended them, with less than half the lease left by
	// the executor's clock (a store answering late): the node could have
	// outlasted the claim. Their runs are scheduled again at once.
	ShortClaims int64
	// Deliveries counts the wake-ups the scheduler handed out; Wasted
	// those whose run was no longer there to claim (taken by another
	// worker or a sweep, or already ended): a stale, duplicate or late
	// wake-up.
	Deliveries, Wasted int64
	// InFlight is a gauge, not a counter: the runs executing under a claim
	// of this executor now.
	InFlight int64
}

type stats struct {
	started, resumed, rebuilt, sweeperCaught                          atomic.Int64
	attempts, succeeded, failed, retries, immediate, lost             atomic.Int64
	short, deliveries, wasted, inFlight, cancelled, deferred, snoozed atomic.Int64
}

// Stats returns the counters.
func (e *Executor) Stats() Stats {
	s := &e.stats
	return Stats{
		Started: s.started.Load(), Resumed: s.resumed.Load(), Rebuilt: s.rebuilt.Load(),
		SweeperCaught: s.sweeperCaught.Load(), Attempts: s.attempts.Load(),
		Succeeded: s.succeeded.Load(), Failed: s.failed.Load(), Snoozed: s.snoozed.Load(), Retries: s.retries.Load(),
		Immediate: s.immediate.Load(), LostClaims: s.lost.Load(), Cancelled: s.cancelled.Load(), ShortClaims: s.short.Load(),
		Deliveries: s.deliveries.Load(), Wasted: s.wasted.Load(), InFlight: s.inFlight.Load(),
		Deferred: s.deferred.Load(),
	}
}
