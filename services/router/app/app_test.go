package app

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const waitFor = 10 * time.Second

// testConfig is a router configuration for an embedded server: fast retries,
// short timeouts.
func testConfig(url string) Config {
	return Config{
		NATS:            service.NATSConfig{URL: url, Provision: true},
		Addr:            "127.0.0.1:0",
		Concurrency:     4,
		AckWait:         5 * time.Second,
		PublishTimeout:  time.Second,
		BackoffMin:      10 * time.Millisecond,
		BackoffMax:      100 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
	}
}

type router struct {
	base string
	done chan error
	stop context.CancelFunc
}

// runRouter starts Run on a loopback listener and stops it when the test ends,
// failing the test if it does not return nil.
func runRouter(t *testing.T, cfg Config) *router {
	t.Helper()
	return runRouterWith(t, cfg, Deps{})
}

func runRouterWith(t *testing.T, cfg Config, deps Deps) *router {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &router{base: "http://" + ln.Addr().String(), done: make(chan error, 1), stop: cancel}
	deps.Listener = ln
	go func() { r.done <- Run(ctx, cfg, deps) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

// shutdown cancels Run and waits for it.
func (r *router) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(waitFor):
		t.Errorf("Run did not return within %v of shutdown", waitFor)
	}
}

func (r *router) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, body, _ := eventstest.Get(t, r.base+path)
	return code, body
}

func (r *router) waitReady(t *testing.T) {
	t.Helper()
	eventstest.Eventually(t, waitFor, "/readyz 200", func() bool {
		code, _ := r.get(t, "/readyz")
		return code == http.StatusOK
	})
}

func publishEvent(t *testing.T, js jetstream.JetStream, typ, svixID, body string) {
	t.Helper()
	subject, err := events.ClerkSubject(typ)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subject, Data: []byte(body), Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, svixID)
	m.Header.Set(events.SvixIDHeader, svixID)
	m.Header.Set(events.ReceivedAtHeader, "1755500000123")
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "route", "testdata", "events", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func subjects(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	var out []string
	for _, m := range eventstest.StreamMsgs(t, js, stream, ">") {
		out = append(out, m.Subject)
	}
	return out
}

func TestRunRoutesAndStopsCleanly(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	r := runRouter(t, testConfig(s.ClientURL()))
	r.waitReady(t)
	if code, body := r.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}

	publishEvent(t, js, "user.created", "msg_app_1", fixture(t, "user.created"))
	eventstest.Eventually(t, waitFor, "one command on novu.trigger.user-created", func() bool {
		return len(subjects(t, js, events.StreamNovu)) > 0
	})
	if got := subjects(t, js, events.StreamNovu); len(got) != 1 || got[0] != "novu.trigger.user-created" {
		t.Errorf("NOVU holds %v, want exactly [novu.trigger.user-created]", got)
	}
	eventstest.Eventually(t, waitFor, "the metrics", func() bool {
		_, body := r.get(t, "/metrics")
		return strings.Contains(body, `router_events_total{outcome="routed",type="user.created"} 1`)
	})
	_, metrics := r.get(t, "/metrics")
	for _, want := range []string{
		`router_commands_published_total{workflow="user-created"} 1`,
		`pipeline_consumer_pending_messages{consumer="router",stream="CLERK"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, ready := r.get(t, "/readyz")
	if !strings.Contains(ready, "3 rules in force from defaults") {
		t.Errorf("/readyz = %s, want the rules in force", ready)
	}

	r.shutdown(t)
	if code, _ := r.get(t, "/healthz"); code != 0 {
		t.Errorf("/healthz answers %d after shutdown", code)
	}
}

func TestRunWithRulesFile(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	cfg := testConfig(s.ClientURL())
	cfg.RoutesFile = filepath.Join("..", "routes.example.yaml")
	r := runRouter(t, cfg)
	r.waitReady(t)

	publishEvent(t, js, "role.created", "msg_role", fixture(t, "role.created"))
	eventstest.Eventually(t, waitFor, "the role.created command", func() bool {
		return len(subjects(t, js, events.StreamNovu)) == 1
	})
	m := eventstest.StreamMsgs(t, js, events.StreamNovu, ">")[0]
	cmd, err := events.ParseCommand(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "novu.trigger.access-control-changed" || cmd.To.Topic == nil || cmd.To.Topic.TopicKey != "security-admins" {
		t.Errorf("command on %s to %+v", m.Subject, cmd.To)
	}
	_, metrics := r.get(t, "/metrics")
	if !strings.Contains(metrics, `router_rules_reloads_total{result="ok",source="file"} 1`) {
		t.Error("/metrics lacks the file load")
	}
}

// TestRunKVRules: a nats kv put changes routing without a restart; an invalid
// one is rejected and the last good rules stay in force.
func TestRunKVRules(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	cfg := testConfig(s.ClientURL())
	cfg.RoutesKVBucket = "ROUTES"
	r := runRouter(t, cfg)
	r.waitReady(t)

	kv, err := js.KeyValue(t.Context(), "ROUTES")
	if err != nil {
		t.Fatalf("the router did not create its bucket: %v", err)
	}
	if _, err := kv.Put(t.Context(), events.RoutesKVKey, []byte("rules:\n  - match: user.created\n    workflows: [welcome]\n")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, waitFor, "the KV rules in force", func() bool {
		_, body := r.get(t, "/readyz")
		return strings.Contains(body, "kv ROUTES/rules rev 1")
	})
	publishEvent(t, js, "user.created", "msg_kv_1", fixture(t, "user.created"))
	eventstest.Eventually(t, waitFor, "a command on novu.trigger.welcome", func() bool {
		return len(subjects(t, js, events.StreamNovu)) == 1
	})
	if got := subjects(t, js, events.StreamNovu); got[0] != "novu.trigger.welcome" {
		t.Fatalf("NOVU holds %v, want [novu.trigger.welcome]", got)
	}

	if _, err := kv.Put(t.Context(), events.RoutesKVKey, []byte("rules:\n  - match: user.created\n    workflow: typo\n")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, waitFor, "the invalid update rejected", func() bool {
		_, body := r.get(t, "/metrics")
		return strings.Contains(body, `router_rules_reloads_total{result="invalid",source="kv"} 1`)
	})
	_, ready := r.get(t, "/readyz")
	if !strings.Contains(ready, `unknown field \"workflow\"`) {
		t.Errorf("/readyz does not show the rejection: %s", ready)
	}
	publishEvent(t, js, "user.created", "msg_kv_2", fixture(t, "user.created"))
	eventstest.Eventually(t, waitFor, "a second command", func() bool {
		return len(subjects(t, js, events.StreamNovu)) == 2
	})
	if got := subjects(t, js, events.StreamNovu); got[1] != "novu.trigger.welcome" {
		t.Errorf("after an invalid update NOVU holds %v: the last good rules must stay", got)
	}
}

func TestRunStartupErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "rules:\n  - match: user.created\n    workflows: [\"a b\"]\n")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "invalid rules file", cfg: Config{RoutesFile: bad}, want: "ROUTES_FILE: invalid routing rules"},
		{name: "invalid setting", cfg: Config{DefaultLocale: "!!"}, want: "DEFAULT_LOCALE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(t.Context(), tt.cfg, Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestRunWithoutNATS: the router starts while NATS is down, reports not
// ready, and still stops cleanly.
func TestRunWithoutNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	r := runRouter(t, testConfig(closed))
	eventstest.Eventually(t, waitFor, "/readyz to answer", func() bool {
		code, _ := r.get(t, "/readyz")
		return code != 0
	})
	if code, body := r.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %s, want 503 while NATS is down", code, body)
	}
	r.shutdown(t)
}

// TestRunSharesARegistry: embedded next to the sink with one registry (the
// devstack), the router starts, both consumers' gauges are exported, and a
// second Run after the first can register again.
func TestRunSharesARegistry(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	if _, err := js.CreateOrUpdateConsumer(t.Context(), events.StreamNovu, events.ConsumerConfig(events.DurableSink)); err != nil {
		t.Fatal(err)
	}
	reg := service.NewRegistry()
	reg.MustRegister(service.ConsumerCollector(js, events.StreamNovu, events.DurableSink)) // what the sink registers
	for i := range 2 {
		r := runRouterWith(t, testConfig(s.ClientURL()), Deps{Registry: reg})
		r.waitReady(t)
		_, metrics := r.get(t, "/metrics")
		for _, want := range []string{
			`pipeline_consumer_pending_messages{consumer="router",stream="CLERK"} 0`,
			`pipeline_consumer_pending_messages{consumer="novu-sink",stream="NOVU"} 0`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("run %d: /metrics lacks %s", i+1, want)
			}
		}
		r.shutdown(t)
	}
}
