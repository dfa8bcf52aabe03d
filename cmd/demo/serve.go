package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/journeyretry/journeyretry/dashboard"
	"github.com/journeyretry/journeyretry/retry"
)

// serveConfig configures demo serve.
type serveConfig struct {
	// Listen is the dashboard's host:port. Default 127.0.0.1:8080.
	Listen string `json:"listen"`
	// AllowRemote lets Listen be an address other hosts reach (not
	// loopback). Default false: the dashboard has no login.
	AllowRemote bool `json:"allowRemote"`
	// Replay enables the replay button of failed runs. Default false.
	Replay bool `json:"replay"`
}

// Validate names the bad field: a Listen that is not host:port, or one
// that is not loopback without AllowRemote.
func (c serveConfig) Validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return retry.InvalidField("listen", "%q: want host:port", c.Listen)
	}
	if !c.AllowRemote && !loopback(host) {
		return retry.InvalidField("listen", "%q is not a loopback address, and the dashboard has no login: pass --allow-remote to serve other hosts", c.Listen)
	}
	return nil
}

// loopback reports whether host names only this machine: localhost or a
// loopback IP. An empty host listens on every interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var serveFlags = []flagBinding{
	{"listen", "serve.listen", "dashboard address host:port (loopback unless --allow-remote)"},
	{"allow-remote", "serve.allowRemote", "allow a --listen address other hosts can reach"},
	{"enable-replay", "serve.replay", "enable the replay button of failed runs (a same-origin POST)"},
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand(ctx, "serve", "serve [flags]\n\nServes a web dashboard of the database: runs by status, attempts and retries over time,\nerror patterns, retry counts, wake-up lateness, the dead-letter list and each run's\nattempt timeline, refreshed live, and Prometheus /metrics. Read-only unless\n--enable-replay.", storeFlags, serveFlags, logFlags)
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	obs, err := newObservability(c.cfg, stderr)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.cfg.Store, readExisting)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := obs.metrics.CountRuns(s); err != nil {
		return err
	}
	h, err := dashboard.New(dashboard.Config{Store: s, Replay: c.cfg.Serve.Replay, Metrics: obs.handler()})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.cfg.Serve.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	mode := "read-only"
	if c.cfg.Serve.Replay {
		mode = "replay enabled"
	}
	fmt.Fprintf(stdout, "dashboard of %s at http://%s/ (%s); SIGINT or SIGTERM to stop\n", storeLabel(c.cfg.Store.DSN), ln.Addr(), mode)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
