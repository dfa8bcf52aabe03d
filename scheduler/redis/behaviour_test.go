package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/retry"
	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
)

var base = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// TestNeverEarly: a due time between two milliseconds is not handed out
// at the millisecond before it, and its delivery carries the exact time.
func TestNeverEarly(t *testing.T) {
	c := testConn(t, false)
	s := open(t, c, redisched.Config{Prefix: testPrefix(t, c)})
	defer s.Close()
	ctx := context.Background()
	due := base.Add(10*time.Millisecond + 500*time.Microsecond)
	must(t, s.Schedule(ctx, "a", due))
	for _, now := range []time.Time{base.Add(10 * time.Millisecond), due.Add(-time.Nanosecond)} {
		if ds, err := s.Claim(ctx, now, 10); err != nil || len(ds) != 0 {
			t.Fatalf("Claim(%v) = %v, %v; want nothing: due at %v", now, ds, err, due)
		}
	}
	ds, err := s.Claim(ctx, base.Add(11*time.Millisecond), 10)
	must(t, err)
	if len(ds) != 1 || !ds[0].At.Equal(due) {
		t.Fatalf("Claim a millisecond later = %+v; want a due at %v", ds, due)
	}
}

// TestRestoreKeepsDeliveries: Restore inserts an absent entry, but neither
// moves a due one nor makes a delivery stale.
func TestRestoreKeepsDeliveries(t *testing.T) {
	c := testConn(t, false)
	s := open(t, c, redisched.Config{Prefix: testPrefix(t, c)})
	defer s.Close()
	ctx := context.Background()
	must(t, s.Schedule(ctx, "held", base))
	must(t, s.Schedule(ctx, "due", base.Add(time.Second)))
	held := claimOne(t, s, base, "held")
	must(t, s.Restore(ctx, "held", base))
	must(t, s.Restore(ctx, "due", base.Add(time.Hour)))
	must(t, s.Restore(ctx, "absent", base.Add(2*time.Second)))
	must(t, s.Ack(ctx, held)) // still the current delivery: it removes held
	ds, err := s.Claim(ctx, base.Add(time.Hour), 10)
	must(t, err)
	if len(ds) != 2 || ds[0].ID != "due" || !ds[0].At.Equal(base.Add(time.Second)) || ds[1].ID != "absent" {
		t.Fatalf("after the restores Claim = %+v; want due (at its own time) and absent", ds)
	}
}

// TestStaleToken: a rescheduled entry's old delivery acknowledges nothing.
func TestStaleToken(t *testing.T) {
	c := testConn(t, false)
	s := open(t, c, redisched.Config{Prefix: testPrefix(t, c)})
	defer s.Close()
	ctx := context.Background()
	must(t, s.Schedule(ctx, "a", base))
	old := claimOne(t, s, base, "a")
	must(t, s.Schedule(ctx, "a", base.Add(time.Second)))
	must(t, s.Ack(ctx, old))
	claimOne(t, s, base.Add(time.Second), "a")
}

func claimOne(t *testing.T, s retry.Scheduler, now time.Time, id string) retry.Delivery {
	t.Helper()
	ds, err := s.Claim(context.Background(), now, 10)
	must(t, err)
	if len(ds) != 1 || ds[0].ID != id {
		t.Fatalf("Claim(%v) = %+v; want [%s]", now, ds, id)
	}
	return ds[0]
}

// TestLostOncePerGeneration: of two processes, only the one that creates
// a generation hears Lost: on the first start, and again after the keys
// vanished.
func TestLostOncePerGeneration(t *testing.T) {
	c := testConn(t, false)
	cfg := redisched.Config{Prefix: testPrefix(t, c), Poll: 20 * time.Millisecond}
	a := open(t, c, cfg)
	defer a.Close()
	b := open(t, c, cfg)
	defer b.Close()
	expectLost(t, a, "the first start")
	expectNoLost(t, b, "a's generation")

	rdb := newClient(t, c)
	defer rdb.Close()
	deletePrefix(t, c, cfg.Prefix) // as a FLUSHALL would, for this prefix only
	got := awaitLost(t, []*redisched.Scheduler{a, b})
	expectNoLost(t, []*redisched.Scheduler{a, b}[1-got], "the generation the other created")
}

func expectLost(t *testing.T, s *redisched.Scheduler, why string) {
	t.Helper()
	select {
	case <-s.Lost():
	case <-time.After(5 * time.Second):
		t.Fatalf("no Lost for %s within 5s", why)
	}
}

func expectNoLost(t *testing.T, s *redisched.Scheduler, why string) {
	t.Helper()
	select {
	case <-s.Lost():
		t.Fatalf("Lost delivered to a second process for %s", why)
	case <-time.After(200 * time.Millisecond): // a few polls
	}
}

// awaitLost waits for Lost on any of ss and returns which.
func awaitLost(t *testing.T, ss []*redisched.Scheduler) int {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		for i, s := range ss {
			select {
			case <-s.Lost():
				return i
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("no Lost within 5s of the keys vanishing")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestServerDownRestartFlush: against a Redis of its own, stopped,
// restarted empty and flushed: while it is down Schedule and Claim fail;
// when it is back they work with no new scheduler, and each loss of the
// entries is reported.
func TestServerDownRestartFlush(t *testing.T) {
	srv := startServer(t)
	c := redisched.Conn{URL: srv.url}
	s := open(t, c, redisched.Config{Poll: 20 * time.Millisecond})
	defer s.Close()
	expectLost(t, s, "the first start")
	ctx := context.Background()
	must(t, s.Schedule(ctx, "a", base))

	srv.stop(t)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// base is ahead: the first Schedule is queued and returns; its send
	// fails, and marks the scheduler down, so that the next ones go at
	// once and fail.
	must(t, s.Schedule(short, "b", base))
	eventually(t, "a Schedule failing with Redis down", func() error {
		if err := s.Schedule(short, "b", base); err == nil {
			return errors.New("succeeded")
		}
		return nil
	})
	if _, err := s.Claim(short, base, 10); err == nil {
		t.Fatal("Claim with Redis down succeeded")
	}

	srv.start(t)
	eventually(t, "Schedule after the restart", func() error { return s.Schedule(ctx, "c", base) })
	expectLost(t, s, "the restart without persistence")
	claimOne(t, s, base, "c") // a was lost with the server: the store rebuilds it

	rdb := newClient(t, c)
	defer rdb.Close()
	must(t, rdb.FlushAll(ctx).Err())
	expectLost(t, s, "FLUSHALL")
	if ds, err := s.Claim(ctx, base.Add(time.Hour), 10); err != nil || len(ds) != 0 {
		t.Fatalf("Claim after FLUSHALL = %v, %v; want nothing", ds, err)
	}
}

// eventually retries f every 20ms for up to 10s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: still failing after 10s: %v", what, err)
}

// server is a redis-server of a test's own, on a free loopback port: for
// the tests that stop, restart or flush it, which must not touch the
// shared server other tests use.
type server struct {
	url, port, dir string
	cmd            *exec.Cmd
}

func startServer(t *testing.T) *server {
	t.Helper()
	if os.Getenv("RETRY_TEST_REDIS_URL") == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis in this environment (.ci/run installs and starts one)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("RETRY_TEST_REDIS_URL is set but redis-server is not on PATH: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	srv := &server{url: "redis://127.0.0.1:" + port + "/0", port: port, dir: t.TempDir()}
	srv.start(t)
	t.Cleanup(func() {
		if srv.cmd != nil {
			srv.cmd.Process.Kill()
			srv.cmd.Wait()
		}
	})
	return srv
}

func (srv *server) start(t *testing.T) {
	t.Helper()
	srv.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", srv.port, "--save", "",
		"--appendonly", "no", "--dir", srv.dir)
	must(t, srv.cmd.Start())
	opts, _ := goredis.ParseURL(srv.url)
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	eventually(t, "redis-server start", func() error { return rdb.Ping(context.Background()).Err() })
}

func (srv *server) stop(t *testing.T) {
	t.Helper()
	must(t, srv.cmd.Process.Kill())
	srv.cmd.Wait()
	srv.cmd = nil
}

// TestNoCredentialInErrors: a password given in the URL appears in no
// error, whatever is wrong: a bad URL, a refused password, a server that
// is not there.
func TestNoCredentialInErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	urls := []string{
		"redis://user:" + secret + "@127.0.0.1:1/0",      // nothing listens
		"redis://user:" + secret + "@127.0.0.1:6379/x",   // bad database
		"redis://user:" + secret + "@127.0.0.1:6379/0?x", // unknown option
		"redis://user:" + secret + "@[::1/0",             // does not parse
		"http://user:" + secret + "@127.0.0.1:6379/0",    // another scheme
		"rediss://user:" + secret + "@127.0.0.1:1/0",     // TLS, nothing listens
	}
	if u := os.Getenv("RETRY_TEST_REDIS_URL"); u != "" {
		// A server that refuses the password.
		urls = append(urls, strings.Replace(u, "redis://", "redis://user:"+secret+"@", 1))
	}
	for _, u := range urls {
		for _, conn := range []redisched.Conn{{URL: u}, {URL: u, ClusterAddrs: []string{"127.0.0.1:1"}}} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			s, err := redisched.Open(ctx, conn, redisched.Config{})
			cancel()
			if err == nil {
				s.Close()
				t.Errorf("Open(%s) succeeded", conn)
				continue
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(conn.String(), secret) ||
				strings.Contains(fmt.Sprint(conn), secret) {
				t.Errorf("the password shows: %v (%s)", err, conn)
			}
		}
	}
}

// TestConnValidate: what a configuration gets wrong is named.
func TestConnValidate(t *testing.T) {
	for _, tc := range []struct {
		c     redisched.Conn
		field string
	}{
		{redisched.Conn{}, "URL"},
		{redisched.Conn{URL: "127.0.0.1:6379"}, "URL"},
		{redisched.Conn{URL: "redis://127.0.0.1:6379/1", ClusterAddrs: []string{"127.0.0.1:7000"}}, "URL"},
		{redisched.Conn{ClusterAddrs: []string{"127.0.0.1"}}, "ClusterAddrs"},
	} {
		err := tc.c.Validate()
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != tc.field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("%+v: Validate = %v; want a retry.FieldError naming %s, wrapping ErrInvalidArgument", tc.c, err, tc.field)
		}
	}
	for field, cfg := range map[string]redisched.Config{"Prefix": {Prefix: "{x}"}, "Lease": {Lease: time.Microsecond}, "Poll": {Poll: time.Millisecond}, "QueueAhead": {QueueAhead: time.Millisecond}} {
		err := cfg.Validate()
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("%+v: Validate = %v; want a retry.FieldError naming %s, wrapping ErrInvalidArgument", cfg, err, field)
		}
	}
	for _, c := range []redisched.Conn{
		{URL: "redis://127.0.0.1:6379/2"},
		{URL: "rediss://u:p@example.com:6380/0?dial_timeout=3s"},
		{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: Validate = %v", c, err)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
