package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSConfig says how to reach NATS and how to provision the streams.
type NATSConfig struct {
	// URL is one or more comma-separated server URLs (NATS_URL).
	URL string
	// CredsFile is a .creds file with a user JWT and nkey seed (NATS_CREDS).
	CredsFile string
	// NKeyFile is an nkey seed file (NATS_NKEY).
	NKeyFile string
	// User and Password authenticate by user name (NATS_USER, NATS_PASSWORD or NATS_PASSWORD_FILE).
	User, Password string
	// Token authenticates by token (NATS_TOKEN or NATS_TOKEN_FILE).
	Token string
	// TLSCA, TLSCert and TLSKey are PEM files (NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY).
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix starts the subjects of this connection's replies: request
	// replies, PubAcks and pull-consumer deliveries (NATS_INBOX_PREFIX; ""
	// keeps nats.go's [DefaultInboxPrefix]). Give each service its own, so its
	// NATS user may subscribe to its own replies only and not read another
	// service's deliveries.
	InboxPrefix string
	// Provision creates the streams, consumers and buckets a service needs
	// when they are missing (NATS_PROVISION, default true); it never changes
	// existing ones (see package provision).
	Provision bool
	// MaxAge, DuplicateWindow, DLQMaxAge and Replicas shape the streams
	// (STREAM_MAX_AGE, STREAM_DUPLICATE_WINDOW, STREAM_DLQ_MAX_AGE, STREAM_REPLICAS).
	MaxAge, DuplicateWindow, DLQMaxAge time.Duration
	Replicas                           int
}

// DefaultNATSURL is where the services look for NATS when NATS_URL is unset.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// DefaultInboxPrefix is the inbox prefix when NATS_INBOX_PREFIX is unset, nats.go's own.
const DefaultInboxPrefix = "_INBOX"

// NATS reads the NATS_* and STREAM_* settings and checks they make sense together.
func (e *Env) NATS() NATSConfig {
	c := NATSConfig{
		URL:             e.String("NATS_URL", DefaultNATSURL),
		CredsFile:       e.File("NATS_CREDS"),
		NKeyFile:        e.File("NATS_NKEY"),
		User:            e.Lookup("NATS_USER"),
		Password:        e.Secret("NATS_PASSWORD"),
		Token:           e.Secret("NATS_TOKEN"),
		TLSCA:           e.File("NATS_TLS_CA"),
		TLSCert:         e.File("NATS_TLS_CERT"),
		TLSKey:          e.File("NATS_TLS_KEY"),
		InboxPrefix:     e.Lookup("NATS_INBOX_PREFIX"),
		Provision:       e.Bool("NATS_PROVISION", true),
		MaxAge:          e.Duration("STREAM_MAX_AGE", events.DefaultMaxAge),
		DuplicateWindow: e.Duration("STREAM_DUPLICATE_WINDOW", events.DefaultDuplicateWindow),
		DLQMaxAge:       e.Duration("STREAM_DLQ_MAX_AGE", events.DefaultDLQMaxAge),
		Replicas:        e.Int("STREAM_REPLICAS", 1, 1),
	}
	for _, u := range strings.Split(c.URL, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			e.Fail("NATS_URL", "want URLs such as nats://127.0.0.1:4222, got %q", u)
		}
	}
	methods := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeyFile != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		e.Fail("NATS auth", "set only one of NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN")
	}
	pw, pwFile := e.getenv("NATS_PASSWORD") != "", e.Lookup("NATS_PASSWORD_FILE") != ""
	if !(pw && pwFile) && (c.User != "") != (pw || pwFile) { // both set is reported by Secret
		e.Fail("NATS_USER", "NATS_USER and NATS_PASSWORD go together")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		e.Fail("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY go together")
	}
	if c.InboxPrefix != "" && !validInboxPrefix(c.InboxPrefix) {
		e.Fail("NATS_INBOX_PREFIX", "want a subject prefix of dot-separated tokens without wildcards or spaces, such as _INBOX_router, got %q", c.InboxPrefix)
	}
	if c.DuplicateWindow > c.MaxAge {
		e.Fail("STREAM_DUPLICATE_WINDOW", "%s is longer than STREAM_MAX_AGE %s: a message id cannot be remembered longer than its message is kept; shorten the window or keep messages longer", c.DuplicateWindow, c.MaxAge)
	}
	if c.Replicas > 5 {
		e.Fail("STREAM_REPLICAS", "want 1 to 5, got %d", c.Replicas)
	}
	return c
}

// StreamOptions returns the stream settings as [events.StreamOption]s.
func (c NATSConfig) StreamOptions() []events.StreamOption {
	var opts []events.StreamOption
	if c.MaxAge > 0 {
		opts = append(opts, events.WithMaxAge(c.MaxAge))
	}
	if c.DuplicateWindow > 0 {
		opts = append(opts, events.WithDuplicateWindow(c.DuplicateWindow))
	}
	if c.DLQMaxAge > 0 {
		opts = append(opts, events.WithDLQMaxAge(c.DLQMaxAge))
	}
	if c.Replicas > 0 {
		opts = append(opts, events.WithReplicas(c.Replicas))
	}
	return opts
}

// Options returns the nats.go options for c: auth, TLS, and reconnecting
// forever with jittered backoff, including when the first connect fails, so a
// service starts while NATS is still down and reports not ready meanwhile.
func (c NATSConfig) Options(name string, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.SetCustomDialer(&causeDialer{d: net.Dialer{Timeout: nats.DefaultTimeout}}),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1), // never buffer publishes while disconnected: fail fast, answer 503
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.InboxPrefix != "" && c.InboxPrefix != DefaultInboxPrefix {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// Connect connects to NATS with [NATSConfig.Options] plus extra.
func Connect(c NATSConfig, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := c.Options(name, log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(c.URL), err)
	}
	return nc, nil
}

// ErrNotConnected reports a NATS connection that is down: still trying to
// connect for the first time, or reconnecting. [NotConnected] wraps it with
// the URLs and the cause.
var ErrNotConnected = errors.New("not connected to NATS")

// NotConnected returns nil when nc is connected, else an error wrapping
// [ErrNotConnected] that names the URLs and the real cause, such as
//
//	not connected to NATS at nats://127.0.0.1:4222: dial tcp 127.0.0.1:4222: connect: connection refused
//
// A connection made by [Connect] remembers its last dial error; otherwise the
// cause is the connection's last error (an authorization or TLS failure),
// when it has one. Publishes and requests on a connection that is down fail
// with errors about the connection's state ("outbound buffer limit exceeded",
// "headers not supported by this server"); this says why it is down.
func NotConnected(nc *nats.Conn) error {
	if nc.IsConnected() {
		return nil
	}
	url := redactURL(strings.Join(nc.Opts.Servers, ","))
	var cause error
	if d, ok := nc.Opts.CustomDialer.(*causeDialer); ok {
		cause = d.cause()
	}
	if err := nc.LastError(); err != nil {
		cause = err // it got past the dial: the server refused the handshake
	}
	if nc.IsClosed() {
		cause = errors.Join(nats.ErrConnectionClosed, cause)
	}
	if cause == nil {
		return fmt.Errorf("%w at %s (%s)", ErrNotConnected, url, nc.Status())
	}
	return fmt.Errorf("%w at %s: %w", ErrNotConnected, url, cause)
}

// causeDialer dials like nats.go's default dialer and remembers the last
// dial error: nats.go hides it while it retries (a refused first connect
// even becomes "no servers available"), and [NotConnected] reports it.
type causeDialer struct {
	d net.Dialer

	mu      sync.Mutex
	lastErr error
}

// Dial implements [nats.CustomDialer].
func (d *causeDialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.d.Dial(network, address)
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
	return c, err
}

// cause is the last dial error, nil after a dial succeeded.
func (d *causeDialer) cause() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// Transient reports errors that mean "NATS or JetStream is not there yet":
// a connection still coming up, a request without responders or timing out.
func Transient(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrReconnectBufExceeded)
}

// UntilConnected runs fn, retrying with backoff (250 ms up to 5 s) while nc is
// disconnected or fn fails with a [Transient] error, until ctx ends. Any other
// error is returned at once; every error is prefixed with what. While nc is
// down, the error logged and returned is [NotConnected]'s (the URL and the
// real cause), not fn's.
func UntilConnected(ctx context.Context, nc *nats.Conn, log *slog.Logger, what string, fn func(context.Context) error) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(actx)
		cancel()
		if err != nil {
			if down := NotConnected(nc); down != nil {
				err = down
			}
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case nc.IsConnected() && !Transient(err):
			return fmt.Errorf("%s: %w", what, err)
		}
		if attempt&(attempt-1) == 0 { // the 1st, 2nd, 4th, 8th... attempt
			log.Warn("waiting for NATS", "step", what, "attempt", attempt, "err", err.Error(), "retry_in", wait.String())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Drain drains nc (pending publishes flushed, subscriptions emptied) and waits
// for it to close, at most timeout. A connection that is down has nothing to
// flush (no reconnect buffer) and is just closed.
func Drain(nc *nats.Conn, timeout time.Duration) error {
	if nc == nil || nc.IsClosed() {
		return nil
	}
	if !nc.IsConnected() {
		nc.Close()
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("drain nats: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		nc.Close()
		return fmt.Errorf("drain nats: not closed after %v", timeout)
	}
}

// validInboxPrefix reports a subject prefix nats.CustomInboxPrefix accepts:
// non-empty dot-separated tokens, no wildcards, no whitespace.
func validInboxPrefix(p string) bool {
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}

// redactURL hides passwords and tokens in NATS URLs.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "[REDACTED]" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
