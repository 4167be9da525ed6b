package stack_test

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// TestCancelStopsEverything checks that ending the context stops every
// service and the server, cleanly, leaving no goroutine behind.
func TestCancelStopsEverything(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	s, _ := samples.Get("user.created")
	if code := post(t, st, samples.NewSvixID(), s.Body, nil); code/100 != 2 {
		t.Fatalf("post: status %d", code)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- st.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stack did not stop")
	}
	natsAddr := strings.TrimPrefix(st.NATSURL, "nats://")
	for _, addr := range []string{natsAddr, strings.TrimPrefix(st.ReceiverURL, "http://")} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s still accepts connections", addr)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if !poll(5*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

func TestStartConfigError(t *testing.T) {
	_, err := stack.Start(t.Context(), stack.Options{Dir: t.TempDir(), Env: map[string]string{"NOVU_TIMEOUT": "soon"}})
	if err == nil || !strings.Contains(err.Error(), "novu-sink") || !strings.Contains(err.Error(), "NOVU_TIMEOUT") {
		t.Fatalf("err = %v, want one naming novu-sink and NOVU_TIMEOUT", err)
	}
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = stack.Start(t.Context(), stack.Options{Dir: t.TempDir(), NATSPort: port})
	if err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("err = %v, want a port-in-use error", err)
	}
}
