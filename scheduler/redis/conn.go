package redis

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/retry"
)

// Conn says how to reach Redis from configuration. Its errors and String
// never show a password.
type Conn struct {
	// URL is redis://[user[:password]@]host[:port][/db], or rediss:// for
	// TLS; go-redis's query options (dial_timeout=...) are accepted. With
	// ClusterAddrs it gives only the credentials and TLS, and its host is
	// one more seed.
	URL string
	// ClusterAddrs, when set, are host:port seeds of a Redis Cluster.
	ClusterAddrs []string
}

// String is the URL with its password replaced by xxxxx, and the seeds.
func (c Conn) String() string {
	s := Redact(c.URL)
	if len(c.ClusterAddrs) > 0 {
		s = strings.TrimPrefix(s+" cluster "+strings.Join(c.ClusterAddrs, ","), " ")
	}
	return s
}

// Redact returns rawURL with its password replaced by xxxxx, or a
// placeholder when it does not parse (the text could hold one anywhere).
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Validate names what is wrong, wrapping [retry.ErrInvalidArgument].
func (c Conn) Validate() error {
	_, err := c.client()
	return err
}

// client returns a client for c without dialling.
func (c Conn) client() (goredis.UniversalClient, error) {
	invalid := func(field, format string, args ...any) error {
		return fmt.Errorf("redis connection: %w", retry.InvalidField(field, format, args...))
	}
	if c.URL == "" && len(c.ClusterAddrs) == 0 {
		return nil, invalid("URL", "empty: want a URL or cluster addresses")
	}
	for _, a := range c.ClusterAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, invalid("ClusterAddrs", "%q: want host:port", a)
		}
	}
	opts := &goredis.Options{}
	if c.URL != "" {
		// url.Parse's error quotes the whole URL, password included: check
		// it here, and name it redacted.
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return nil, invalid("URL", "%s: want redis://[user:password@]host[:port][/db] or rediss://", Redact(c.URL))
		}
		if opts, err = goredis.ParseURL(c.URL); err != nil {
			return nil, invalid("URL", "%s: %s", Redact(c.URL), strings.TrimPrefix(err.Error(), "redis: "))
		}
	}
	if len(c.ClusterAddrs) == 0 {
		return goredis.NewClient(opts), nil
	}
	if opts.DB != 0 {
		return nil, invalid("URL", "%s: a Cluster has only database 0", Redact(c.URL))
	}
	addrs := c.ClusterAddrs
	if opts.Addr != "" {
		addrs = append(addrs[:len(addrs):len(addrs)], opts.Addr)
	}
	var tlsConfig *tls.Config
	if opts.TLSConfig != nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12} // each node's own name, not the URL's host
	}
	return goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: addrs, Username: opts.Username, Password: opts.Password, TLSConfig: tlsConfig,
	}), nil
}

// Open connects as c says and returns a scheduler that owns the client: its
// Close closes it.
func Open(ctx context.Context, c Conn, cfg Config) (*Scheduler, error) {
	rdb, err := c.client()
	if err != nil {
		return nil, err
	}
	s, err := newScheduler(ctx, rdb, true, cfg)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("%w (%s)", err, c)
	}
	return s, nil
}
