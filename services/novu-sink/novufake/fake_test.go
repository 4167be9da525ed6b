package novufake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const key = "sk_fake"

func post(t *testing.T, url, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "ApiKey "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func trigger(name, tx string) string {
	return fmt.Sprintf(`{"name":%q,"to":{"subscriberId":"u1"},"payload":{"a": 1},"transactionId":%q}`, name, tx)
}

func TestTriggerIsRecorded(t *testing.T) {
	s := NewServer(key)
	defer s.Close()
	resp, body := post(t, s.URL, TriggerPath, trigger("welcome", "txn_1"), map[string]string{
		"Idempotency-Key": "txn_1", "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Accept": "application/json"})
	if resp.StatusCode != 201 {
		t.Fatalf("status %d %s, want 201", resp.StatusCode, body)
	}
	if want := `{"data":{"acknowledged":true,"status":"processed","transactionId":"txn_1"}}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	got := s.Triggers()
	if len(got) != 1 {
		t.Fatalf("recorded %d triggers, want 1", len(got))
	}
	tr := got[0]
	if tr.Name != "welcome" || string(tr.To) != `{"subscriberId":"u1"}` || string(tr.Payload) != `{"a": 1}` || tr.TransactionID != "txn_1" ||
		tr.IdempotencyKey != "txn_1" || !strings.HasPrefix(tr.Traceparent, "00-0af7") || tr.Accept != "application/json" ||
		tr.StatusCode != 201 || tr.Status != "processed" || tr.Received.IsZero() || tr.Endpoint != EndpointTrigger {
		t.Errorf("recorded %+v", tr)
	}
	if s.Count("txn_1") != 1 || s.AcceptedCount() != 1 || s.Calls() != 1 || len(s.Accepted()) != 1 {
		t.Errorf("Count %d AcceptedCount %d Calls %d", s.Count("txn_1"), s.AcceptedCount(), s.Calls())
	}
	post(t, s.URL, TriggerPath, trigger("welcome", "txn_1"), nil)
	if d := s.Duplicates(); d["txn_1"] != 2 {
		t.Errorf("Duplicates = %v, want txn_1 twice", d)
	}
	s.Reset()
	if len(s.Triggers()) != 0 || s.Count("txn_1") != 0 || s.Calls() != 0 {
		t.Errorf("Reset left records")
	}
}

func TestRefusals(t *testing.T) {
	s := NewServer(key, WithWorkflow("missing", WorkflowNotFound()))
	defer s.Close()
	many := make([]string, 101)
	for i := range many {
		many[i] = trigger("w", fmt.Sprint(i))
	}
	tests := []struct {
		name     string
		path     string
		body     string
		hdr      map[string]string
		wantCode int
		wantMsg  string
	}{
		{name: "wrong key", path: TriggerPath, body: trigger("w", "t"), hdr: map[string]string{"Authorization": "ApiKey nope"}, wantCode: 401, wantMsg: "Unauthorized"},
		{name: "bearer scheme", path: TriggerPath, body: trigger("w", "t"), hdr: map[string]string{"Authorization": "Bearer " + key}, wantCode: 401},
		{name: "no content type", path: TriggerPath, body: trigger("w", "t"), hdr: map[string]string{"Content-Type": "text/plain"}, wantCode: 415},
		{name: "missing name", path: TriggerPath, body: `{"to":"u"}`, wantCode: 422, wantMsg: "name"},
		{name: "missing to", path: TriggerPath, body: `{"name":"w"}`, wantCode: 422, wantMsg: "to should not be null"},
		{name: "payload not an object", path: TriggerPath, body: `{"name":"w","to":"u","payload":[1]}`, wantCode: 422, wantMsg: "payload"},
		{name: "workflow not found", path: TriggerPath, body: trigger("missing", "t"), wantCode: 422, wantMsg: `"message":"workflow_not_found"`},
		{name: "bulk over 100", path: BulkTriggerPath, body: `{"events":[` + strings.Join(many, ",") + `]}`, wantCode: 422, wantMsg: "no more than 100"},
		{name: "bulk empty", path: BulkTriggerPath, body: `{"events":[]}`, wantCode: 422},
		{name: "unknown path", path: "/v1/nope", body: `{}`, wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, s.URL, tt.path, tt.body, tt.hdr)
			if resp.StatusCode != tt.wantCode || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("answer %d %s, want %d with %q", resp.StatusCode, body, tt.wantCode, tt.wantMsg)
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("error body is not JSON: %s", body)
			}
		})
	}
	if s.AcceptedCount() != 0 {
		t.Errorf("accepted %d refused triggers", s.AcceptedCount())
	}
}

func TestBulkPerItemResults(t *testing.T) {
	s := NewServer(key, WithWorkflow("missing", WorkflowNotFound()), WithWorkflow("paused", Status("trigger_not_active")))
	defer s.Close()
	body := `{"events":[` + trigger("w", "t1") + "," + trigger("missing", "t2") + "," + trigger("paused", "t3") + `]}`
	resp, got := post(t, s.URL, BulkTriggerPath, body, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("status %d %s", resp.StatusCode, got)
	}
	want := `{"data":[{"acknowledged":true,"status":"processed","transactionId":"t1"},` +
		`{"acknowledged":true,"status":"error","error":["workflow_not_found"],"transactionId":"t2"},` +
		`{"acknowledged":true,"status":"trigger_not_active","transactionId":"t3"}]}`
	if got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
	if sizes := s.BulkSizes(); len(sizes) != 1 || sizes[0] != 3 {
		t.Errorf("BulkSizes = %v, want [3]", sizes)
	}
	if s.Count("t1") != 1 || s.Count("t2") != 0 || s.Count("t3") != 0 {
		t.Errorf("counts t1 %d t2 %d t3 %d, want 1 0 0", s.Count("t1"), s.Count("t2"), s.Count("t3"))
	}
}

func TestHookAnswers(t *testing.T) {
	var seen []Call
	var mu sync.Mutex
	s := NewServer(key, WithHook(func(c Call) *Response {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
		if c.Seq == 1 {
			r := Unavailable(2 * time.Second)
			return &r
		}
		return nil
	}))
	defer s.Close()
	resp, body := post(t, s.URL, TriggerPath, trigger("w", "t"), nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(body, "unavailable") {
		t.Errorf("first answer %d %v %s, want 503 Retry-After 2", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := post(t, s.URL, TriggerPath, trigger("w", "t"), nil); resp.StatusCode != 201 {
		t.Errorf("second answer %d, want 201", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Endpoint != EndpointTrigger || seen[0].Triggers[0].Name != "w" {
		t.Errorf("hook saw %+v", seen)
	}
}

func TestRateLimit(t *testing.T) {
	s := NewServer(key, WithRateLimit(1, 2))
	defer s.Close()
	var codes []int
	var last *http.Response
	for range 3 {
		last, _ = post(t, s.URL, TriggerPath, trigger("w", "t"), nil)
		codes = append(codes, last.StatusCode)
		if last.Header.Get("RateLimit-Limit") == "" || last.Header.Get("RateLimit-Remaining") == "" ||
			last.Header.Get("RateLimit-Reset") == "" || !strings.Contains(last.Header.Get("RateLimit-Policy"), `category="trigger"`) {
			t.Errorf("answer lacks RateLimit-* headers: %v", last.Header)
		}
	}
	if fmt.Sprint(codes) != "[201 201 429]" {
		t.Fatalf("codes = %v, want [201 201 429]", codes)
	}
	if last.Header.Get("Retry-After") != "1" || last.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("429 headers = %v, want Retry-After 1 and nothing remaining", last.Header)
	}
	// A bulk call costs 100 tokens: more than this bucket ever holds.
	if resp, _ := post(t, s.URL, BulkTriggerPath, `{"events":[`+trigger("w", "b")+`]}`, nil); resp.StatusCode != 429 {
		t.Errorf("bulk answer %d, want 429", resp.StatusCode)
	}
}

func TestIdempotency(t *testing.T) {
	release := make(chan struct{})
	s := NewServer(key, WithIdempotency(), WithHook(func(c Call) *Response {
		if c.Seq == 1 {
			<-release // hold the first call in progress
			r := Unavailable(0)
			return &r
		}
		return nil
	}))
	defer s.Close()
	hdr := map[string]string{"Idempotency-Key": "k1"}
	first := make(chan int)
	go func() {
		resp, _ := post(t, s.URL, TriggerPath, trigger("w", "t"), hdr)
		first <- resp.StatusCode
	}()
	// Wait until the first call is in the hook, then try the same key.
	for s.Calls() < 1 {
		time.Sleep(time.Millisecond)
	}
	resp, _ := post(t, s.URL, TriggerPath, trigger("w", "t"), hdr)
	if resp.StatusCode != 409 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("same key in progress: %d %v, want 409 Retry-After 1", resp.StatusCode, resp.Header)
	}
	close(release)
	if code := <-first; code != 503 {
		t.Fatalf("first call %d, want the scripted 503", code)
	}
	resp, _ = post(t, s.URL, TriggerPath, trigger("w", "t"), hdr)
	if resp.StatusCode != 503 || resp.Header.Get("Idempotency-Replay") != "true" || resp.Header.Get("Idempotency-Key") != "k1" {
		t.Errorf("replay: %d %v, want the cached 503 with Idempotency-Replay", resp.StatusCode, resp.Header)
	}
	resp, _ = post(t, s.URL, TriggerPath, trigger("w", "other"), hdr)
	if resp.StatusCode != 422 {
		t.Errorf("same key, other body: %d, want 422", resp.StatusCode)
	}
	resp, _ = post(t, s.URL, TriggerPath, trigger("w", "t"), map[string]string{"Idempotency-Key": "k2"})
	if resp.StatusCode != 201 || resp.Header.Get("Idempotency-Replay") != "" {
		t.Errorf("fresh key: %d %v, want 201 without replay", resp.StatusCode, resp.Header)
	}
	resp, _ = post(t, s.URL, TriggerPath, trigger("w", "t"), map[string]string{"Idempotency-Key": "k2"})
	if resp.StatusCode != 201 || resp.Header.Get("Idempotency-Replay") != "true" {
		t.Errorf("replayed success: %d %v, want 201 replayed", resp.StatusCode, resp.Header)
	}
	if s.Count("t") != 1 {
		t.Errorf("accepted %d times, want 1 (replays do not run)", s.Count("t"))
	}
}

func TestDropLosesTheAnswer(t *testing.T) {
	s := NewServer(key, WithHook(func(Call) *Response { return &Response{Drop: true} }))
	defer s.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+TriggerPath, strings.NewReader(trigger("w", "t")))
	req.Header.Set("Authorization", "ApiKey "+key)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d, want the connection dropped", resp.StatusCode)
	}
	if s.Count("t") != 1 || !s.Triggers()[0].Dropped {
		t.Errorf("Count = %d, want the trigger accepted though unanswered", s.Count("t"))
	}
}

func TestDelay(t *testing.T) {
	s := NewServer(key, WithLatency(50*time.Millisecond))
	defer s.Close()
	start := time.Now()
	post(t, s.URL, TriggerPath, trigger("w", "t"), nil)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want at least the 50ms latency", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewServer(key)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			post(t, s.URL, TriggerPath, trigger("w", fmt.Sprint(i)), nil)
			_ = s.Triggers()
			_ = s.Duplicates()
		})
	}
	wg.Wait()
	if len(s.Triggers()) != 40 || s.AcceptedCount() != 40 || len(s.Duplicates()) != 0 {
		t.Errorf("recorded %d, accepted %d, duplicates %v; want 40, 40, none", len(s.Triggers()), s.AcceptedCount(), s.Duplicates())
	}
}

func TestMaxRecords(t *testing.T) {
	s := NewServer(key, WithMaxRecords(2))
	defer s.Close()
	for i := range 3 {
		post(t, s.URL, TriggerPath, trigger("w", fmt.Sprint(i)), nil)
	}
	if len(s.Triggers()) != 2 || s.Count("2") != 1 {
		t.Errorf("recorded %d (want 2), count of the third %d (want 1)", len(s.Triggers()), s.Count("2"))
	}
}

func BenchmarkServeTrigger(b *testing.B) {
	f := New(key, WithMaxRecords(1))
	body := []byte(trigger("user-created", "txn_0123456789abcdef0123456789abcdef"))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, TriggerPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "ApiKey "+key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		f.ServeHTTP(w, req)
		if w.Code != 201 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func TestMaxBody(t *testing.T) {
	s := NewServer(key, WithMaxBody(200))
	defer s.Close()
	big := fmt.Sprintf(`{"name":"w","to":"u","payload":{"x":%q}}`, strings.Repeat("a", 200))
	if resp, body := post(t, s.URL, TriggerPath, big, nil); resp.StatusCode != 413 || !strings.Contains(body, "too large") {
		t.Errorf("oversize trigger: %d %s, want 413", resp.StatusCode, body)
	}
	if resp, body := post(t, s.URL, TriggerPath, trigger("w", "t"), nil); resp.StatusCode != 201 {
		t.Errorf("small trigger: %d %s, want 201", resp.StatusCode, body)
	}
}
