// Package redis is a [retry.Scheduler] on Redis sorted sets, for many
// worker processes sharing one Redis (a server, Sentinel or Cluster: it
// takes a go-redis [goredis.UniversalClient]). Import go-redis beside it
// under another name, for instance goredis.
//
// Entries are scored by their due time in Unix milliseconds, rounded up,
// and Claim compares them with its now rounded down: an entry is never
// handed out before its time, not even by a millisecond. Claim is one Lua
// script (run by SHA, reloaded when Redis answers NOSCRIPT) that moves due
// entries to an in-flight set scored by their lease's end, each with a
// fresh token; a consumer that dies leaves its entries to come back when
// their lease ends.
//
// Restore and Cancel return once Redis has run them, and so does a
// Schedule due soon, but the calls of many goroutines at once share a
// pipeline, one round trip, and their Schedules one script call: a worker
// pool's calls do not queue for the client's connections one round trip
// each, with Claims behind them, nor cost Redis a script each. A few such
// pipelines are in flight at once, each id's calls always in the same
// one's queue, in order. A Schedule due later ([Config.QueueAhead]: a
// retry's, typically) is queued and returns at once, and goes within
// [AckDelay] with the others queued meanwhile, before its time: one
// script for many retries.
//
// Under a backlog, a Claim that goes to Redis takes [Config.Prefetch] due
// entries more than it was asked for and holds them for this handle's
// next Claims, which then need no round trip; entries held and not handed
// out soon (a busy process) go back for any process to take. An Ack is
// queued and returns at once: it rides on the next pipeline or Claim, or
// is sent within a few milliseconds, and a Schedule or Cancel of its entry
// makes it needless (both end the delivery), so a retry's delivery usually
// costs Redis no Ack at all. See [Scheduler.Ack].
//
// Wake-ups need no polling: a Schedule that makes an entry the earliest
// publishes its due time, and every consumer's waiter (one goroutine and one
// pub/sub connection per [Scheduler]) re-arms a timer for the earliest entry
// it knows of. Between those, each waiter sends one command per
// [Config.Poll] (default one second) to notice a lost generation and any
// message it missed while disconnected.
//
// It keeps nothing the store does not: Redis flushed, or restarted empty,
// loses wake-ups only. The first Claim or peek after a loss creates a new
// generation, and the one process that created it hears of it on
// [Scheduler.Lost], and rebuilds the entries from the store with
// [Scheduler.Restore], which never disturbs an entry another process holds.
package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/retry"
)

// Defaults of [Config].
const (
	PrefixDefault   = "jretry"
	LeaseDefault    = 30 * time.Second
	PollDefault     = time.Second
	PrefetchDefault = 32
	// QueueAheadDefault is the least lead that lets a queued Schedule
	// reach Redis before its time: AckDelay, and a millisecond for the
	// round trip.
	QueueAheadDefault = AckDelay + time.Millisecond
)

// Config configures a [Scheduler]. The zero value is ready to use.
type Config struct {
	// Prefix names this scheduler's keys: {Prefix}:due, {Prefix}:inflight
	// and so on, one hash tag so that a Cluster keeps them in one slot.
	// Applications sharing a Redis use different prefixes; the processes of
	// one application use the same. Default PrefixDefault ("jretry"); it
	// must not contain '{' or '}'.
	Prefix string

	// Lease is how long a delivery may stay unacknowledged before the entry
	// is handed out again (Claim at now >= the delivering Claim's now +
	// Lease). Default LeaseDefault (30s); at least a millisecond.
	Lease time.Duration

	// Poll is how often an idle consumer looks at Redis by itself: to find
	// a lost generation, and entries it was not told of while its pub/sub
	// connection was down. Default PollDefault (1s); at least 10ms.
	Poll time.Duration

	// Prefetch is how many due entries more than its limit a Claim that
	// goes to Redis takes, to hand out from this process at the next
	// Claims without a round trip. They are leased like any delivery;
	// held ones not handed out within [HoldMax] (every consumer of this
	// handle busy), and all of them at Close, go back to the due set with
	// their due time, for any process. Default PrefetchDefault (32);
	// negative for none, every Claim then a round trip.
	Prefetch int

	// QueueAhead is how far ahead of Now a Schedule's time must be for
	// the Schedule to be queued (see [Scheduler.Schedule]) instead of
	// sent at once. Default QueueAheadDefault; at least that when set;
	// negative for none, every Schedule then returning once Redis has
	// run it.
	QueueAhead time.Duration

	// Now is the clock the waiter signals Ready by, and Schedule decides
	// what to queue by (Claim compares with its now argument only).
	// Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Prefix = cmp.Or(c.Prefix, PrefixDefault)
	c.Lease = cmp.Or(c.Lease, LeaseDefault)
	c.Poll = cmp.Or(c.Poll, PollDefault)
	c.Prefetch = max(cmp.Or(c.Prefetch, PrefetchDefault), 0)
	c.QueueAhead = cmp.Or(c.QueueAhead, QueueAheadDefault)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a field that cannot be used, naming it.
func (c Config) Validate() error {
	var errs []error
	for _, r := range c.Prefix {
		if r == '{' || r == '}' {
			errs = append(errs, retry.InvalidField("Prefix", "%q contains a brace (it is used as a hash tag)", c.Prefix))
			break
		}
	}
	if c.Lease != 0 && c.Lease < time.Millisecond {
		errs = append(errs, retry.InvalidField("Lease", "%v below 1ms", c.Lease))
	}
	if c.Poll != 0 && c.Poll < 10*time.Millisecond {
		errs = append(errs, retry.InvalidField("Poll", "%v below 10ms", c.Poll))
	}
	if c.QueueAhead > 0 && c.QueueAhead < QueueAheadDefault {
		errs = append(errs, retry.InvalidField("QueueAhead", "%v below %v: a queued Schedule could reach Redis after its time", c.QueueAhead, QueueAheadDefault))
	}
	if err := combine.Errors(errs...); err != nil {
		return fmt.Errorf("redis scheduler: %w", err)
	}
	return nil
}

// Scheduler is a [retry.Scheduler] on Redis, safe for concurrent use. It is
// shared ([retry.SharedScheduler]) and reports lost entries
// ([retry.LossReporter]). Create it with [New] or [Open].
type Scheduler struct {
	rdb       goredis.UniversalClient
	ownClient bool
	keys      []string
	channel   string
	lease     time.Duration
	poll      time.Duration
	prefetch  int
	ahead     time.Duration // Config.QueueAhead; negative for none
	now       func() time.Time

	ready   chan struct{}
	lost    chan struct{}
	kick    chan struct{} // the waiter's state changed: re-arm
	stop    chan struct{}
	stopCtx context.Context // ends when Close begins: the waiter's calls
	cancel  context.CancelFunc
	done    chan struct{}
	pubsub  *goredis.PubSub

	calls      []chan *call   // to the batchers, by id (see send): Schedule, Restore, Cancel
	seed       maphash.Seed   // of the ids' hash that picks their batcher
	background sync.WaitGroup // the batchers and the tender, which Close waits for

	local local       // entries held for this handle's Claims, Acks and Schedules queued
	down  atomic.Bool // the last call of this handle failed: Schedules go at once, to report it

	// closeMu orders calls against Close: calls hold it shared, Close
	// exclusively, so nothing is handed out once Close has returned.
	closeMu sync.RWMutex
	closed  bool

	mu       sync.Mutex
	next     int64  // earliest score the waiter knows of, Unix ms; math.MaxInt64 for none
	messages uint64 // wake-ups heard (published or local) since New
	newGen   string // the generation this handle creates if it finds none
	seen     string // the generation the latest reply named
}

var (
	_ retry.SharedScheduler = (*Scheduler)(nil)
	_ retry.LossReporter    = (*Scheduler)(nil)
	_ retry.BatchScheduler  = (*Scheduler)(nil)
)

// New returns a running scheduler on rdb. The caller keeps rdb and closes it
// after the scheduler. It subscribes to the scheduler's channel and checks
// the generation before it returns: a Redis it cannot reach is an error.
func New(ctx context.Context, rdb goredis.UniversalClient, cfg Config) (*Scheduler, error) {
	return newScheduler(ctx, rdb, false, cfg)
}

func newScheduler(ctx context.Context, rdb goredis.UniversalClient, own bool, cfg Config) (*Scheduler, error) {
	if rdb == nil {
		return nil, fmt.Errorf("redis scheduler: nil client: %w", retry.ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Scheduler{
		rdb: rdb, ownClient: own,
		channel: "{" + cfg.Prefix + "}:wake",
		lease:   cfg.Lease, poll: cfg.Poll, prefetch: cfg.Prefetch, ahead: cfg.QueueAhead, now: cfg.Now,
		newGen: rand.Text(),
		ready:  make(chan struct{}, 1),
		lost:   make(chan struct{}, 1),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		next:   math.MaxInt64,
		seed:   maphash.MakeSeed(),
	}
	s.local.kick = make(chan struct{}, 1)
	for range batchers {
		s.calls = append(s.calls, make(chan *call))
	}
	for _, suffix := range keySuffixes {
		s.keys = append(s.keys, "{"+cfg.Prefix+"}:"+suffix)
	}
	s.pubsub = rdb.Subscribe(ctx, s.channel)
	if _, err := s.pubsub.Receive(ctx); err != nil { // the subscription's confirmation
		s.pubsub.Close()
		return nil, fmt.Errorf("redis scheduler: subscribe: %w", err)
	}
	if err := s.peek(ctx); err != nil {
		s.pubsub.Close()
		return nil, fmt.Errorf("redis scheduler: %w", err)
	}
	s.stopCtx, s.cancel = context.WithCancel(context.Background())
	go s.wait()
	for _, calls := range s.calls {
		s.background.Go(func() { s.batch(calls) })
	}
	s.background.Go(s.tend)
	return s, nil
}

// Shared reports true: every process on the same Redis and Prefix sees the
// entries.
func (s *Scheduler) Shared() bool { return true }

// Lost receives a value when this handle found the generation absent and
// created it: at the first start on an empty Redis, and after a flush or
// a restart that lost the entries. One handle per lost generation hears of
// it. It is closed by Close.
func (s *Scheduler) Lost() <-chan struct{} { return s.lost }

// Ready receives a value when an entry may have become due by the
// configured clock: the earliest entry's time came, or any process
// scheduled an earlier one. A value may be spurious: Claim and wait again.
// It is closed by Close.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Schedule inserts id due at at, or moves it to at, making an outstanding
// delivery's token stale. An empty id, or a time outside the years 1678 to
// 2262, wraps [retry.ErrInvalidArgument].
//
// A Schedule due at least [Config.QueueAhead] after Config.Now is queued
// and returns at once, unless this handle's last call to Redis failed: it
// goes within [AckDelay] in one script with the Schedules queued
// meanwhile (or on the next pipeline or Claim, which sends it first), so
// that it is in Redis before its time. This handle's Claims, Restores and
// Close see it at once, other handles within AckDelay. A queued Schedule
// that fails is not retried, as a failed one is not: the store holds the
// run's due time, the entry's earlier delivery comes back when its lease
// ends, and the executor's sweeper takes what has none; the failure makes
// the next Schedules go at once, so that they report Redis down.
func (s *Scheduler) Schedule(ctx context.Context, id string, at time.Time) error {
	return s.put(ctx, "schedule", scheduleScript, id, at)
}

// ScheduleMany is Schedule of each of ids at at, never queued, in one
// pipelined round trip, one script call for up to 256 ids (each run again
// alone if Redis answers NOSCRIPT); see
// [retry.BatchScheduler]. The ids and the time are checked before anything
// is sent, so a bad one schedules none; a connection that fails part way
// may leave some scheduled, as a failed Schedule may have.
func (s *Scheduler) ScheduleMany(ctx context.Context, ids []string, at time.Time) error {
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("schedule many: empty id: %w", retry.ErrInvalidArgument)
		}
	}
	if at.Before(minTime) || at.After(maxTime) {
		return fmt.Errorf("schedule many: at %v outside years 1678 to 2262: %w", at, retry.ErrInvalidArgument)
	}
	release, err := s.enter("schedule many")
	if err != nil {
		return err
	}
	defer release()
	if len(ids) == 0 {
		return nil
	}
	s.local.forget(ids...) // as Schedule's: a queued one would land after, and undo it
	qs := make([]queued, len(ids))
	for i, id := range ids {
		qs[i] = queued{id: id, due: ceilMs(at), at: at.UnixNano()}
	}
	if err := s.sendQueued(ctx, s.queuedCalls(nil, qs)); err != nil {
		return fmt.Errorf("schedule many: %w", err)
	}
	return nil
}

// Restore inserts id due at at only when it is absent (neither due nor
// delivered): a rebuild from the store uses it, so that it never moves an
// entry or makes another process's delivery stale.
func (s *Scheduler) Restore(ctx context.Context, id string, at time.Time) error {
	return s.put(ctx, "restore", restoreScript, id, at, s.channel)
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// put sends script for id due at at: ARGV id, due ms, at ns, then extra.
func (s *Scheduler) put(ctx context.Context, op string, script *goredis.Script, id string, at time.Time, extra ...any) error {
	if id == "" {
		return fmt.Errorf("%s: empty id: %w", op, retry.ErrInvalidArgument)
	}
	if at.Before(minTime) || at.After(maxTime) {
		return fmt.Errorf("%s %q: at %v outside years 1678 to 2262: %w", op, id, at, retry.ErrInvalidArgument)
	}
	release, err := s.enter(op)
	if err != nil {
		return err
	}
	defer release()
	due := ceilMs(at)
	switch {
	case script == restoreScript:
		// An Ack or Schedule queued before must land first: the entry
		// an Ack ends is then absent, and restored; one a Schedule
		// inserts is there, and kept.
		if err := s.sendQueuedOf(ctx, id); err != nil {
			return fmt.Errorf("%s %q: %w", op, id, err)
		}
	case s.ahead >= 0 && !s.down.Load() && !at.Before(s.now().Add(s.ahead)):
		s.local.schedule(queued{id: id, due: due, at: at.UnixNano()}, time.Now())
		return nil
	default:
		s.local.forget(id) // this Schedule ends the delivery: see Ack
	}
	published, err := s.send(ctx, script, append([]any{id, due, at.UnixNano()}, extra...)...)
	s.down.Store(err != nil)
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if published == 1 { // the earliest of its batch's due times: heard keeps the least
		s.heard(due) // this process's consumers need not wait for the message
	}
	return nil
}

// Cancel removes id, delivered or not; an absent id is not an error.
func (s *Scheduler) Cancel(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("cancel: empty id: %w", retry.ErrInvalidArgument)
	}
	release, err := s.enter("cancel")
	if err != nil {
		return err
	}
	defer release()
	s.local.forget(id)
	if _, err := s.send(ctx, cancelScript, id); err != nil {
		return fmt.Errorf("cancel %q: %w", id, err)
	}
	return nil
}

// Claim hands out up to limit entries due at or before now, earliest first,
// each leased to the caller until now + Lease. It is atomic across
// processes. It hands out the entries this handle holds (see
// [Config.Prefetch]) first, and goes to Redis only for more, sending the
// queued Acks in the same script and the queued Schedules in the same
// round trip, before it claims. A limit below 1 wraps
// [retry.ErrInvalidArgument].
func (s *Scheduler) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	if limit < 1 {
		return nil, fmt.Errorf("claim: limit %d below 1: %w", limit, retry.ErrInvalidArgument)
	}
	release, err := s.enter("claim")
	if err != nil {
		return nil, err
	}
	defer release()
	out, more := s.local.take(now, limit, s.lease)
	if len(out) == limit {
		if more {
			s.signalReady() // what is still held is claimable too
		}
		return out, nil
	}
	want := limit - len(out)
	acks, scheds := s.local.takeQueued()
	claim := &scriptCall{script: claimScript, slice: true,
		args: append([]any{s.generation(), now.UnixMilli(), ceilMs(now.Add(s.lease)), want + s.prefetch}, ackArgs(acks)...)}
	heard := s.heardCount()
	// The queued Schedules first, in the same round trip: the claim may
	// hand them out.
	_ = s.sendQueued(ctx, append(s.queuedCalls(nil, scheds), claim))
	res, err := claim.res, claim.err
	if err != nil { // the Acks lost: their leases bring the entries back
		if len(out) > 0 {
			return out, nil // what it held; the next Claim reports Redis
		}
		return nil, fmt.Errorf("claim: %w", err)
	}
	if len(res) < 2 || (len(res)-2)%3 != 0 {
		return nil, fmt.Errorf("claim: unexpected reply of %d values", len(res))
	}
	s.learn(res[0], res[1], heard)
	var extra []retry.Delivery
	for i := 2; i < len(res); i += 3 {
		id, _ := res[i].(string)
		atText, _ := res[i+1].(string)
		token, _ := res[i+2].(string)
		ns, err := strconv.ParseInt(atText, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("claim: entry %q has a bad time %q", id, atText)
		}
		d := retry.Delivery{ID: id, At: time.Unix(0, ns).UTC(), Token: token}
		if len(out) < limit {
			out = append(out, d)
		} else {
			extra = append(extra, d)
		}
	}
	if len(extra) > 0 {
		s.local.hold(extra, now, time.Now())
		s.signalReady()
	}
	return out, nil
}

// signalReady signals Ready unless a signal is pending. Only the waiter
// and calls (which Close waits for before the waiter closes Ready) send.
func (s *Scheduler) signalReady() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ack removes the delivered entry unless d.Token is stale (the entry was
// rescheduled or redelivered since). An absent entry is not an error.
//
// It queues the Ack and returns: this handle's next Claim, Restore of the
// entry or Close sends it first, and otherwise it rides on the next
// pipeline or goes within [AckDelay]. A Schedule or Cancel of the entry
// drops it, since either ends the delivery in Redis as the Ack would. An
// Ack lost on the way (Redis down, the process killed) leaves the entry
// in flight until its lease ends: then it is handed out again, a stale
// wake-up that the store's claim refuses.
func (s *Scheduler) Ack(ctx context.Context, d retry.Delivery) error {
	if d.ID == "" {
		return fmt.Errorf("ack: empty id: %w", retry.ErrInvalidArgument)
	}
	release, err := s.enter("ack")
	if err != nil {
		return err
	}
	defer release()
	s.local.ack(d, time.Now())
	return nil
}

// Close stops the waiter, closes Ready and Lost, and closes the client when
// [Open] made it. Entries stay in Redis for the other processes. Later calls,
// Close included, wrap [retry.ErrClosed].
func (s *Scheduler) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return fmt.Errorf("close: %w", retry.ErrClosed)
	}
	s.closed = true
	// What this handle held goes back, and the queued Acks out, for the
	// other processes; a Redis that is down gets them back when their
	// leases end.
	ctx, cancel := context.WithTimeout(context.Background(), s.poll)
	s.sendLocal(ctx, true)
	cancel()
	close(s.stop)
	s.cancel()
	err := s.pubsub.Close()
	<-s.done
	s.background.Wait()
	if s.ownClient {
		err = combine.Errors(err, s.rdb.Close())
	}
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// enter admits a call unless the scheduler is closed; release ends it.
func (s *Scheduler) enter(op string) (release func(), err error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, fmt.Errorf("%s: %w", op, retry.ErrClosed)
	}
	return s.closeMu.RUnlock, nil
}

// peek reads the earliest score and the generation: at New and every Poll.
func (s *Scheduler) peek(ctx context.Context) error {
	heard := s.heardCount()
	res, err := peekScript.Run(ctx, s.rdb, s.keys, s.generation()).Slice()
	if err != nil {
		return fmt.Errorf("peek: %w", err)
	}
	if len(res) != 2 {
		return fmt.Errorf("peek: unexpected reply of %d values", len(res))
	}
	s.learn(res[0], res[1], heard)
	return nil
}

// generation is the generation this handle creates if it finds none.
func (s *Scheduler) generation() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newGen
}

// learn takes a script's {next, gen}. The entries were lost when the
// generation is the one this handle creates and no earlier reply named
// it: this handle's call created it, whether this reply says so or a
// later one does after the first never arrived (a timeout, a dropped
// connection), which would otherwise leave every process thinking
// another had rebuilt. The loss is reported once per generation, and the
// handle picks a new value for the next one, so that tokens of two
// generations never repeat. next is the earliest score in Redis when the
// script ran: it replaces what the waiter knew, unless a wake-up was
// heard since the call began (heard), which may be newer.
func (s *Scheduler) learn(next, gen any, heard uint64) {
	g, _ := gen.(string)
	n, _ := next.(int64)
	if n < 0 {
		n = math.MaxInt64
	}
	s.mu.Lock()
	created := g == s.newGen && g != s.seen
	s.seen = g
	if created {
		s.newGen = rand.Text()
	}
	if s.messages == heard {
		s.next = n
	} else {
		s.next = min(s.next, n)
	}
	s.mu.Unlock()
	if created {
		select {
		case s.lost <- struct{}{}:
		default:
		}
	}
	s.kickWaiter()
}

// heard notes a wake-up for due (Unix ms).
func (s *Scheduler) heard(due int64) {
	s.mu.Lock()
	s.messages++
	s.next = min(s.next, due)
	s.mu.Unlock()
	s.kickWaiter()
}

func (s *Scheduler) heardCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages
}

func (s *Scheduler) kickWaiter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// wait is the waiter: it signals Ready when the earliest known entry is due
// by the clock, re-arming on every wake-up message and Claim, and peeks
// every Poll.
func (s *Scheduler) wait() {
	defer close(s.done)
	defer close(s.lost)
	defer close(s.ready)
	msgs := s.pubsub.Channel()
	timer := time.NewTimer(time.Hour)
	poll := time.NewTicker(s.poll)
	defer timer.Stop()
	defer poll.Stop()
	for {
		s.mu.Lock()
		next := s.next
		d := time.Duration(math.MaxInt64)
		if next != math.MaxInt64 {
			d = time.UnixMilli(next).Sub(s.now())
			if d <= 0 {
				s.next = math.MaxInt64 // told; the next Claim says what is left
			}
		}
		s.mu.Unlock()
		if d <= 0 {
			s.signalReady()
			continue
		}
		timer.Reset(min(d, time.Hour))
		select {
		case <-s.stop:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if due, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
				s.heard(due)
			}
		case <-s.kick:
		case <-timer.C:
		case <-poll.C:
			ctx, cancel := context.WithTimeout(s.stopCtx, s.poll)
			_ = s.peek(ctx) // Redis down: Claim and Schedule report it; try again next Poll
			cancel()
		}
	}
}

// ceilMs is t in Unix milliseconds, rounded up: a due entry's score, and a
// lease's end. (t.UnixMilli rounds down: the now Claim compares with.)
func ceilMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// call is one Schedule, Restore or Cancel on its way to Redis: the
// script, its arguments (the entry's id first; a Schedule's are one
// entry's, without the channel: flush joins a batch's) and where its reply
// goes. A Schedule's reply says whether its batch published.
type call struct {
	script *goredis.Script
	args   []any
	reply  chan reply
}

type reply struct {
	n   int64
	err error
}

// maxBatch bounds the calls of one pipeline.
const maxBatch = 256

// batchers is the number of batchers, each sending one pipeline at a time:
// with one, each pipeline waited for the round trip before it. More than
// four make batches smaller and cost Redis more scripts than they save in
// waiting (BENCHMARKS.md, Redis scheduler).
const batchers = 4

// send runs script with args through the batcher of args[0], the id, and
// returns its integer reply, once Redis has run it. Calls of many
// goroutines (a worker pool's Schedules) share one pipeline, one
// round trip, instead of queueing for the client's connections one round
// trip each, where a Claim would queue behind them. The id's hash picks
// the batcher, so that one id's calls stay in one queue, in order.
func (s *Scheduler) send(ctx context.Context, script *goredis.Script, args ...any) (int64, error) {
	c := &call{script: script, args: args, reply: make(chan reply, 1)}
	calls := s.calls[maphash.String(s.seed, args[0].(string))%uint64(len(s.calls))]
	select {
	case calls <- c:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err() // it may have run; each call's effect is a hint
	}
}

// batch is a batcher: it sends the calls waiting on calls when it is
// free, up to maxBatch, in one pipeline, until Close (which waits for
// every call to return first). A call for an id already in the batch
// waits for the next one, so that the calls of one id run in order even
// when a batch is partly sent again (after NOSCRIPT).
func (s *Scheduler) batch(calls chan *call) {
	var carry *call
	for {
		batch := make([]*call, 0, 8)
		if carry != nil {
			batch, carry = append(batch, carry), nil
		} else {
			select {
			case c := <-calls:
				batch = append(batch, c)
			case <-s.stop:
				return
			}
		}
		ids := map[any]bool{batch[0].args[0]: true}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-calls:
				if ids[c.args[0]] {
					carry = c
					break fill
				}
				ids[c.args[0]] = true
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.flush(batch)
	}
}

// flush sends batch, and the queued Acks, in one pipeline and answers
// each call. The batch's Schedules go as one call of scheduleScript, whose
// commands each take all their entries: Redis runs one script and four
// commands for the lot, not per entry.
func (s *Scheduler) flush(batch []*call) {
	ctx := s.stopCtx
	var (
		sends []*scriptCall
		many  *scriptCall // the Schedules'
	)
	sends = s.queuedCalls(s.local.takeQueued()) // queued Acks and Schedules ride along
	for _, c := range batch {
		if c.script != scheduleScript {
			sends = append(sends, &scriptCall{script: c.script, args: c.args, calls: []*call{c}})
			continue
		}
		if many == nil {
			many = &scriptCall{script: scheduleScript, args: []any{s.channel}}
			sends = append(sends, many)
		}
		many.args = append(many.args, c.args...)
		many.calls = append(many.calls, c)
	}
	s.pipeline(ctx, sends)
	for _, sc := range sends {
		for _, c := range sc.calls {
			c.reply <- reply{sc.n, sc.err}
		}
	}
}

// pipeline sends the script calls in one pipeline and sets each one's
// reply. The scripts run by SHA; one Redis no longer knows (NOSCRIPT:
// restarted, or SCRIPT FLUSH) runs again on its own, which loads it.
func (s *Scheduler) pipeline(ctx context.Context, sends []*scriptCall) {
	cmds := make([]*goredis.Cmd, len(sends))
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, sc := range sends {
			cmds[i] = sc.script.EvalSha(ctx, p, s.keys, sc.args...)
		}
		return nil
	}) // each command carries its error
	for i, sc := range sends {
		sc.read(cmds[i])
		if sc.err != nil && goredis.HasErrorPrefix(sc.err, "NOSCRIPT") {
			sc.read(sc.script.Run(ctx, s.rdb, s.keys, sc.args...))
		}
		if sc.earliest != 0 && sc.n == 1 { // queued Schedules that published
			s.heard(sc.earliest)
		}
	}
}

// scriptCall is one script call of a pipeline, the calls it answers and
// its reply: an integer, or a list when slice is set (a claim's).
// earliest is the earliest due time of Schedules that answer no call
// (queued ones, ScheduleMany's): the script's publishing then concerns
// this process's consumers too (see put).
type scriptCall struct {
	script   *goredis.Script
	args     []any
	calls    []*call
	earliest int64
	slice    bool
	n        int64
	res      []any
	err      error
}

// read takes the call's reply from cmd.
func (sc *scriptCall) read(cmd *goredis.Cmd) {
	if sc.slice {
		sc.res, sc.err = cmd.Slice()
	} else {
		sc.n, sc.err = cmd.Int64()
	}
}
