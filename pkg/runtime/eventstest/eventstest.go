// Package eventstest starts an in-process JetStream server for tests, with the
// pipeline's streams created, the way net/http/httptest starts HTTP servers. No
// test needs Docker or a separately installed nats-server.
package eventstest

import (
	"context"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats-server/v2/server"
	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RunServer starts a JetStream server on a random loopback port, storing in
// t.TempDir(), creates every stream of [events.StreamConfigs] with opts, and
// shuts it down when the test ends. Use s.ClientURL() to connect.
func RunServer(t testing.TB, opts ...events.StreamOption) *server.Server {
	t.Helper()
	return RunServerWith(t, nil, opts...)
}

// RunServerWith is [RunServer] with configure applied to the server's
// options first (a small MaxPayload, for instance); configure may be nil.
func RunServerWith(t testing.TB, configure func(*server.Options), opts ...events.StreamOption) *server.Server {
	t.Helper()
	o := natsserver.DefaultTestOptions
	o.Host = "127.0.0.1"
	o.Port = -1
	o.JetStream = true
	o.StoreDir = t.TempDir()
	if configure != nil {
		configure(&o)
	}
	s := natsserver.RunServer(&o)
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	nc, js := Connect(t, s.ClientURL())
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cfg := range events.StreamConfigs(opts...) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			t.Fatalf("eventstest: create stream %s: %v", cfg.Name, err)
		}
	}
	return s
}

// Connect opens a NATS connection to url, closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("eventstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("eventstest: jetstream: %v", err)
	}
	return nc, js
}

// RunJetStream starts a server with [RunServer] and returns a connection to it.
func RunJetStream(t testing.TB, opts ...events.StreamOption) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := RunServer(t, opts...)
	return Connect(t, s.ClientURL())
}

// StreamMsgs returns every message stored in stream whose subject matches
// filter (a subject or wildcard), in order. It fails the test on error.
func StreamMsgs(t testing.TB, js jetstream.JetStream, stream, filter string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("eventstest: stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("eventstest: stream info %s: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if filter == "" || subjectMatches(filter, m.Subject) {
			out = append(out, m)
		}
	}
	return out
}

// Eventually polls cond every 10 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("eventstest: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func subjectMatches(filter, subject string) bool {
	f, s := splitDots(filter), splitDots(subject)
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
