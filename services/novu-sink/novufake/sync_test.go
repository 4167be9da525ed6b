package novufake

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// call sends one request to srv and returns the status and the body.
func call(t *testing.T, srv *Server, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "ApiKey k")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSubscriberContract(t *testing.T) {
	srv := NewServer("k")
	defer srv.Close()

	code, body := call(t, srv, "POST", "/v2/subscribers", `{"subscriberId":"user_1","email":"a@example.com","firstName":"Zoë","data":{"clerkUserId":"user_1"}}`)
	if code != 201 || !strings.HasPrefix(body, `{"data":{`) || !strings.Contains(body, `"subscriberId":"user_1"`) {
		t.Fatalf("create = %d %s", code, body)
	}
	// An update: null clears, absent keeps, data is replaced.
	code, _ = call(t, srv, "POST", "/v2/subscribers", `{"subscriberId":"user_1","email":"b@example.com","firstName":null}`)
	s, ok := srv.Subscriber("user_1")
	if code != 201 || !ok || s.Field("email") != "b@example.com" || s.Fields["firstName"] != nil || string(s.Data) != `{}` || s.Upserts != 2 {
		t.Fatalf("update = %d, %+v", code, s)
	}
	if code, _ := call(t, srv, "POST", "/v2/subscribers", `{"subscriberId":"user_1","email":"not-an-email"}`); code != 422 {
		t.Errorf("bad email = %d, want 422", code)
	}
	if code, _ := call(t, srv, "POST", "/v2/subscribers", `{"email":"a@example.com"}`); code != 422 {
		t.Errorf("no subscriberId = %d, want 422", code)
	}

	// Subscriptions: the topic is created on first use; unknown ids are errors in a 201.
	code, body = call(t, srv, "POST", "/v2/topics/org-org_1/subscriptions", `{"subscriberIds":["user_1","user_404"]}`)
	var add struct {
		Data   []json.RawMessage `json:"data"`
		Meta   map[string]int    `json:"meta"`
		Errors []struct{ SubscriberID, Code string }
	}
	if err := json.Unmarshal([]byte(body), &add); err != nil || code != 201 || len(add.Data) != 1 || add.Meta["failed"] != 1 ||
		len(add.Errors) != 1 || add.Errors[0].Code != "SUBSCRIBER_NOT_FOUND" || add.Errors[0].SubscriberID != "user_404" {
		t.Fatalf("add = %d %s", code, body)
	}
	if ids, ok := srv.Topic("org-org_1"); !ok || !slices.Equal(ids, []string{"user_1"}) {
		t.Errorf("topic = %v %v", ids, ok)
	}
	if code, _ := call(t, srv, "POST", "/v2/topics/org-org_1/subscriptions", `{"subscriberIds":[`+strings.Repeat(`"u",`, 100)+`"u"]}`); code != 422 {
		t.Errorf("101 ids = %d, want 422", code)
	}
	if code, _ := call(t, srv, "POST", "/v2/topics/org.bad/subscriptions", `{"subscriberIds":["user_1"]}`); code != 400 {
		t.Errorf("bad key = %d, want 400", code)
	}
	if code, _ := call(t, srv, "DELETE", "/v2/topics/nope/subscriptions", `{"subscriberIds":["user_1"]}`); code != 404 {
		t.Errorf("remove from an unknown topic = %d, want 404", code)
	}

	// Deleting the subscriber removes its subscriptions; a second delete is a 404.
	if code, body := call(t, srv, "DELETE", "/v2/subscribers/user_1", ""); code != 200 || body != `{"data":{"acknowledged":true,"status":"deleted"}}` {
		t.Errorf("delete = %d %s", code, body)
	}
	if ids, ok := srv.Topic("org-org_1"); !ok || len(ids) != 0 {
		t.Errorf("topic after the delete = %v %v", ids, ok)
	}
	if code, body := call(t, srv, "DELETE", "/v2/subscribers/user_1", ""); code != 404 || !strings.Contains(body, "Subscriber was not found") {
		t.Errorf("second delete = %d %s", code, body)
	}
	if code, _ := call(t, srv, "DELETE", "/v2/topics/org-org_1", ""); code != 200 {
		t.Errorf("delete topic = %d", code)
	}
	if _, ok := srv.Topic("org-org_1"); ok {
		t.Error("topic still exists")
	}
	if code, _ := call(t, srv, "DELETE", "/v2/topics/org-org_1", ""); code != 404 {
		t.Errorf("delete unknown topic = %d, want 404", code)
	}
	if n := len(srv.SyncCalls()); n != 12 {
		t.Errorf("%d sync calls recorded, want 12", n)
	}
}

func TestSyncRemoveAndAuth(t *testing.T) {
	srv := NewServer("k", WithHook(func(c Call) *Response {
		if c.Endpoint == EndpointAddSubscriptions {
			r := TooManyRequests(time.Second)
			return &r
		}
		return nil
	}))
	defer srv.Close()
	srv.PutSubscriber("user_1")
	if code, _ := call(t, srv, "POST", "/v2/topics/t/subscriptions", `{"subscriberIds":["user_1"]}`); code != 429 {
		t.Fatalf("scripted add = %d, want 429", code)
	}
	if _, ok := srv.Topic("t"); ok {
		t.Error("a refused add created the topic")
	}
	srv.SetHook(nil)
	call(t, srv, "POST", "/v2/topics/t/subscriptions", `{"subscriptions":["user_1"]}`)
	code, body := call(t, srv, "DELETE", "/v2/topics/t/subscriptions", `{"subscriberIds":["user_1","user_2"]}`)
	if code != 200 || !strings.Contains(body, `"SUBSCRIBER_NOT_FOUND"`) {
		t.Errorf("remove = %d %s", code, body)
	}
	if ids, _ := srv.Topic("t"); len(ids) != 0 {
		t.Errorf("members = %v", ids)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "DELETE", srv.URL+"/v2/subscribers/user_1", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no key = %d, want 401", resp.StatusCode)
	}
}

// TestSyncOptions: the sync endpoints honour WithLatency, Response.Drop and
// WithMaxRecords as the trigger endpoints do.
func TestSyncOptions(t *testing.T) {
	t.Run("latency", func(t *testing.T) {
		srv := NewServer("k", WithLatency(50*time.Millisecond))
		defer srv.Close()
		start := time.Now()
		if code, _ := call(t, srv, "POST", "/v2/subscribers", `{"subscriberId":"u"}`); code != 201 {
			t.Fatalf("upsert = %d", code)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("answered after %v, want at least the 50ms latency", d)
		}
	})
	t.Run("drop", func(t *testing.T) {
		srv := NewServer("k", WithHook(func(Call) *Response { return &Response{Drop: true} }))
		defer srv.Close()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v2/subscribers", strings.NewReader(`{"subscriberId":"u"}`))
		req.Header.Set("Authorization", "ApiKey k")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("got an answer %d, want the connection dropped", resp.StatusCode)
		}
		calls := srv.SyncCalls()
		if _, ok := srv.Subscriber("u"); !ok || len(calls) != 1 || !calls[0].Dropped || calls[0].StatusCode != 0 {
			t.Errorf("subscriber stored %v, calls %+v; want it applied and the call recorded as dropped", ok, calls)
		}
	})
	t.Run("max records", func(t *testing.T) {
		srv := NewServer("k", WithMaxRecords(2))
		defer srv.Close()
		for _, id := range []string{"u1", "u2", "u3"} {
			call(t, srv, "POST", "/v2/subscribers", `{"subscriberId":"`+id+`"}`)
		}
		if n := len(srv.SyncCalls()); n != 2 || len(srv.SubscriberIDs()) != 3 {
			t.Errorf("recorded %d calls (want 2), stored %v (want all three)", n, srv.SubscriberIDs())
		}
	})
}
