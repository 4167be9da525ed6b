package eventstest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, to capture the logs
// that service goroutines write while a test reads them.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Get requests url with the test's context and returns the status, body and
// header. A request that fails (nothing listening yet, as while polling a
// readiness endpoint) returns status 0 and the error as the body.
func Get(t testing.TB, url string) (status int, body string, header http.Header) {
	t.Helper()
	ctx := t.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}
