package natsconf

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// passwords are the users' passwords, given to the server through its
// environment as in production.
var passwords = map[string]string{
	"admin":     "admin-pw",
	"receiver":  "receiver-pw",
	"router":    "router-pw",
	"novu-sink": "sink-pw",
	"sys":       "sys-pw",
}

// passwordVars are the environment variables accounts.conf reads them from.
var passwordVars = map[string]string{
	"admin":     "NATS_ADMIN_PASSWORD",
	"receiver":  "NATS_RECEIVER_PASSWORD",
	"router":    "NATS_ROUTER_PASSWORD",
	"novu-sink": "NATS_SINK_PASSWORD",
	"sys":       "NATS_SYS_PASSWORD",
}

// loadConfig reads nats-server.conf (and the accounts.conf it includes) as
// nats-server would, then moves it to loopback, free ports and a temporary
// store, so only the users and their permissions come from the file.
func loadConfig(t *testing.T) *server.Options {
	t.Helper()
	for user, v := range passwordVars {
		t.Setenv(v, passwords[user])
	}
	o, err := server.ProcessConfigFile("nats-server.conf")
	if err != nil {
		t.Fatalf("nats-server.conf: %v", err)
	}
	o.Host, o.Port, o.HTTPPort = "127.0.0.1", -1, 0
	o.StoreDir = filepath.Join(t.TempDir(), "jetstream")
	o.NoSigs, o.NoLog = true, true
	o.LameDuckDuration, o.LameDuckGracePeriod = 0, 0
	return o
}

// runServer starts a server with o and shuts it down when the test ends.
func runServer(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats server %s not ready", o.ServerName)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// connectAs opens a connection as user with its service's inbox prefix.
func connectAs(t *testing.T, url, user string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.UserInfo(user, passwords[user]), nats.CustomInboxPrefix(inboxPrefix(user))}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func inboxPrefix(user string) string { return "_INBOX_" + user }

// provisionAsAdmin creates, as the admin user, what the services may not
// create themselves: the streams with replicas copies, their durable
// consumers (which inherit the streams' replicas), the routes bucket.
func provisionAsAdmin(t *testing.T, url string, replicas int) {
	t.Helper()
	nc := connectAs(t, url, "admin")
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	declared := events.Declared(events.ResourceOptions{
		Streams:      []events.StreamOption{events.WithReplicas(replicas)},
		RoutesBucket: routesBucket,
	})
	if _, err := provision.PlanAndApply(ctx, js, declared); err != nil {
		t.Fatalf("provision: %v", err)
	}
}

// routesBucket is the router's rules bucket that accounts.conf allows.
const routesBucket = "ROUTES"

// serviceEnv is each service's own NATS user, inbox prefix and no provisioning.
func serviceEnv() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, svc := range []string{"receiver", "router", "novu-sink"} {
		out[svc] = map[string]string{
			"NATS_USER":         svc,
			"NATS_PASSWORD":     passwords[svc],
			"NATS_INBOX_PREFIX": inboxPrefix(svc),
			"NATS_PROVISION":    "false",
		}
	}
	out["router"]["ROUTES_KV_BUCKET"] = routesBucket
	return out
}

const novuKey = "novu-test-key"

// startPipeline runs the three services against url, each as its own user,
// with Novu faked.
func startPipeline(t *testing.T, url string, env map[string]string) (*stack.Stack, *novufake.Server) {
	t.Helper()
	fake := novufake.NewServer(novuKey)
	t.Cleanup(fake.Close)
	base := stack.FakeNovuEnv(fake.URL, novuKey)
	for k, v := range env {
		base[k] = v
	}
	st, err := stack.Start(t.Context(), stack.Options{
		Dir:          t.TempDir(),
		NATSURL:      url,
		Env:          base,
		ServiceEnv:   serviceEnv(),
		ReadyTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("start pipeline: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close pipeline: %v", err)
		}
	})
	return st, fake
}

// post signs body as svixID and posts it to the receiver, returning the
// status and the Retry-After header.
func post(t *testing.T, client *http.Client, st *stack.Stack, svixID string, body []byte) (int, string, error) {
	t.Helper()
	resp, err := st.Post(t.Context(), client, svixID, body, nil)
	if err != nil {
		return 0, "", fmt.Errorf("post %s: %w", svixID, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}
