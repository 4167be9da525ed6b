package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/app"
	natsserver "github.com/nats-io/nats-server/v2/test"
	svix "github.com/svix/svix-webhooks/go"
)

const userCreated = `{"data":{"email_addresses":[{"email_address":"ada@example.com","id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC"}],"first_name":"Ada","id":"user_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aD","primary_email_address_id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC"},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"user.created"}`

// running is a Run started in the background on a loopback listener.
type running struct {
	base string // the webhook port
	ops  string // the ops port
	done chan error
	stop context.CancelFunc
	logs eventstest.SyncBuffer // what Run logged
}

func startRun(t *testing.T, env map[string]string) *running {
	t.Helper()
	cfg, err := app.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{base: "http://" + ln.Addr().String(), ops: "http://" + opsLn.Addr().String(), done: make(chan error, 1), stop: cancel}
	log := slog.New(slog.NewTextHandler(&r.logs, nil))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Deps: service.Deps{Listener: ln, Logger: log}, OpsListener: opsLn})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return r
}

// shutdown cancels Run's context and returns what Run returned.
func (r *running) shutdown(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- nil // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s of cancel")
		return nil
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	code, body, _ := eventstest.Get(t, url)
	if code == 0 {
		t.Fatalf("GET %s: %s", url, body)
	}
	return code, body
}

// webhookRequest builds a POST of a delivery of signed, signed now with
// secretA, whose body is read from body.
func webhookRequest(t *testing.T, url, id string, signed []byte, body io.Reader) *http.Request {
	t.Helper()
	wh, err := svix.NewWebhook(secretA)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign(id, now, signed)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(signed))
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("svix-signature", sig)
	return req
}

func postWebhook(t *testing.T, url, id string) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(webhookRequest(t, url, id, []byte(userCreated), strings.NewReader(userCreated)))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRun(t *testing.T) {
	s := eventstest.RunServer(t)
	r := startRun(t, map[string]string{
		"CLERK_WEBHOOK_SIGNING_SECRET": secretA,
		"NATS_URL":                     s.ClientURL(),
		"RECEIVER_PUBLISH_TIMEOUT":     "2s",
		"SHUTDOWN_TIMEOUT":             "5s",
	})
	eventstest.Eventually(t, 5*time.Second, "/readyz 200", func() bool { code, _ := get(t, r.ops+"/readyz"); return code == http.StatusOK })
	if code, _ := get(t, r.ops+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d, want 200", code)
	}
	resp, body := postWebhook(t, r.base+"/webhooks/clerk", "msg_run_1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d %q, want 200", resp.StatusCode, body)
	}
	_, js := eventstest.Connect(t, s.ClientURL())
	msgs := eventstest.StreamMsgs(t, js, events.StreamClerk, "clerk.user.created")
	if len(msgs) != 1 || string(msgs[0].Data) != userCreated {
		t.Fatalf("stored %d messages, want the one webhook byte for byte", len(msgs))
	}
	if _, metrics := get(t, r.ops+"/metrics"); !strings.Contains(metrics, `receiver_webhooks_total{outcome="accepted"} 1`) ||
		!strings.Contains(metrics, "receiver_publish_duration_seconds_bucket") {
		t.Errorf("/metrics lacks the receiver metrics:\n%.2000s", metrics)
	}
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/", "/webhooks/clerk/x", "/"} {
		if code, _ := get(t, r.base+path); code != http.StatusNotFound {
			t.Errorf("webhook port GET %s: %d, want 404 (only the webhook path is served there)", path, code)
		}
	}
	if code, _ := get(t, r.ops+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof served without RECEIVER_PPROF: %d", code)
	}
	// A 60 KB svix-id reaches the handler (400); headers beyond the
	// server's bound get Go's 431: both 4xx, which Svix does not retry forever.
	for _, tt := range []struct {
		size int
		want int
	}{{60 << 10, http.StatusBadRequest}, {100 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req := webhookRequest(t, r.base+"/webhooks/clerk", "msg_x", []byte(userCreated), strings.NewReader(userCreated))
		req.Header.Set("svix-id", strings.Repeat("m", tt.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("svix-id of %d bytes: %v", tt.size, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("svix-id of %d bytes: %d %q, want %d", tt.size, resp.StatusCode, b, tt.want)
		}
	}
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
}

// TestRunRefusesBodyCapOverMaxPayload: a body cap that cannot fit the
// server's max_payload with its headers stops the start, naming both numbers.
func TestRunRefusesBodyCapOverMaxPayload(t *testing.T) {
	s := eventstest.RunServer(t)
	cfg, err := app.LoadConfig(func(k string) string {
		return map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "NATS_URL": s.ClientURL(), "RECEIVER_MAX_BODY_BYTES": "1048576"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	opsLn, _ := net.Listen("tcp", "127.0.0.1:0")
	var logs eventstest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	err = app.Run(t.Context(), cfg, app.Deps{Deps: service.Deps{Listener: ln, Logger: log}, OpsListener: opsLn})
	if err == nil || !strings.Contains(err.Error(), "1048576") || !strings.Contains(err.Error(), "max_payload of 1048576") {
		t.Fatalf("Run: %v, want an error naming the cap and max_payload", err)
	}
	// The connect handler, which nats.go also calls for a connect at
	// start, must not log the same problem after Run refused to start.
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(logs.String(), "body cap") {
		t.Errorf("the refused start also logged the body cap:\n%s", logs.String())
	}
}

// TestRunWithoutNATS starts the receiver while NATS is down: it must serve
// 503s and an unready /readyz, then provision the streams and accept
// webhooks once NATS comes up, and go unready again when NATS goes away.
func TestRunWithoutNATS(t *testing.T) {
	port := freePort(t)
	r := startRun(t, map[string]string{
		"CLERK_WEBHOOK_SIGNING_SECRET": secretA,
		"NATS_URL":                     fmt.Sprintf("nats://127.0.0.1:%d", port),
		"RECEIVER_PUBLISH_TIMEOUT":     "1s",
		"SHUTDOWN_TIMEOUT":             "5s",
		// Too close to the server's max_payload: said once NATS is up.
		"RECEIVER_MAX_BODY_BYTES": "1048576",
	})
	if code, _ := get(t, r.ops+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d while NATS is down, want 200 (alive)", code)
	}
	if code, body := get(t, r.ops+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d %s while NATS is down, want 503", code, body)
	}
	resp, body := postWebhook(t, r.base+"/webhooks/clerk", "msg_down")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("webhook while NATS is down: %d %q (Retry-After %q), want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	// NATS comes up empty: the receiver must create the streams itself.
	opts := natsserver.DefaultTestOptions
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir = "127.0.0.1", port, true, t.TempDir()
	srv := natsserver.RunServer(&opts)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	eventstest.Eventually(t, 10*time.Second, "/readyz 200 after NATS came up", func() bool {
		code, _ := get(t, r.ops+"/readyz")
		return code == http.StatusOK
	})
	if resp, body := postWebhook(t, r.base+"/webhooks/clerk", "msg_up"); resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook once NATS is up: %d %q, want 200", resp.StatusCode, body)
	}
	// Too late to refuse the body cap: the receiver says so once.
	const capLine = "webhooks near the body cap will get 413"
	eventstest.Eventually(t, 5*time.Second, "the body cap logged after NATS came up", func() bool {
		return strings.Contains(r.logs.String(), capLine)
	})
	time.Sleep(100 * time.Millisecond) // a second line would come at once
	if n := strings.Count(r.logs.String(), capLine); n != 1 {
		t.Errorf("the body cap logged %d times, want once", n)
	}
	_, js := eventstest.Connect(t, srv.ClientURL())
	// The receiver creates the one stream it writes, and only that one.
	if _, err := js.Stream(t.Context(), events.StreamClerk); err != nil {
		t.Fatalf("stream CLERK: %v, want the receiver to have created it", err)
	}
	for _, name := range []string{events.StreamNovu, events.StreamDLQ} {
		if _, err := js.Stream(t.Context(), name); err == nil {
			t.Errorf("stream %s exists: the receiver created a stream it does not use", name)
		}
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	eventstest.Eventually(t, 5*time.Second, "/readyz 503 after NATS went away", func() bool {
		code, _ := get(t, r.ops+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run returned %v after cancel while NATS is down, want nil", err)
	}
}

// TestRunFinishesInFlightWebhook cancels Run while a webhook is still being
// received: the listener must close at once, but that webhook must still be
// stored and answered 200 before Run returns nil.
func TestRunFinishesInFlightWebhook(t *testing.T) {
	s := eventstest.RunServer(t)
	r := startRun(t, map[string]string{
		"CLERK_WEBHOOK_SIGNING_SECRET": secretA,
		"NATS_URL":                     s.ClientURL(),
		"SHUTDOWN_TIMEOUT":             "5s",
	})
	eventstest.Eventually(t, 5*time.Second, "/readyz 200", func() bool { code, _ := get(t, r.ops+"/readyz"); return code == http.StatusOK })

	body := []byte(userCreated)
	pr, pw := io.Pipe()
	req := webhookRequest(t, r.base+"/webhooks/clerk", "msg_inflight", body, pr)
	// Expect: 100-continue tells when the handler has started reading the
	// body, i.e. the request is in flight on the server.
	reading := make(chan struct{})
	req.Header.Set("Expect", "100-continue")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { close(reading) },
	}))
	type result struct {
		code int
		err  error
	}
	answered := make(chan result, 1)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 10 * time.Second}}
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			answered <- result{err: err}
			return
		}
		_ = resp.Body.Close()
		answered <- result{code: resp.StatusCode}
	}()
	select {
	case <-reading:
	case res := <-answered:
		t.Fatalf("answered before the body was sent: %d, %v", res.code, res.err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the handler did not start reading the body within 10s")
	}

	r.stop()
	addr := strings.TrimPrefix(r.base, "http://")
	eventstest.Eventually(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	if _, err := pw.Write(body); err != nil {
		t.Fatalf("write the body: %v", err)
	}
	_ = pw.Close()
	res := <-answered
	if res.err != nil || res.code != http.StatusOK {
		t.Fatalf("in-flight webhook: %d, %v; want 200", res.code, res.err)
	}
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	_, js := eventstest.Connect(t, s.ClientURL())
	if n := len(eventstest.StreamMsgs(t, js, events.StreamClerk, events.ClerkSubjectsAll)); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = app.Run(t.Context(), app.Config{}, app.Deps{Deps: service.Deps{Listener: ln}})
	if err == nil || !strings.Contains(err.Error(), "CLERK_WEBHOOK_SIGNING_SECRET") {
		t.Fatalf("Run with no secret: %v, want an error naming CLERK_WEBHOOK_SIGNING_SECRET", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener still open after a refused start: %v", err)
	}
}

// freePort returns a loopback port nothing listens on (any more).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}
