package outcome

import (
	"strings"
	"testing"
)

// checkResult fails t when r breaks what every caller relies on: a known
// action, a one-line reason within its bound, no negative wait.
func checkResult(t *testing.T, what string, r Result) {
	t.Helper()
	switch r.Action {
	case Deliver, Retry, DeadLetter, Outage:
	default:
		t.Fatalf("%s: action %d is none of the known ones", what, r.Action)
	}
	if len(r.Reason) > maxReasonLen+len("…") || strings.ContainsAny(r.Reason, "\r\n") {
		t.Fatalf("%s: reason of %d bytes or on several lines: %q", what, len(r.Reason), r.Reason)
	}
	if r.RetryAfter < 0 {
		t.Fatalf("%s: negative wait %v", what, r.RetryAfter)
	}
}

// FuzzClassify classifies arbitrary Novu answers (status, headers, body),
// single and bulk: never a panic, always a bounded result, one per item.
func FuzzClassify(f *testing.F) {
	f.Add(201, "", "", "", "", []byte(`{"data":{"acknowledged":true,"status":"processed","transactionId":"t1"}}`))
	f.Add(201, "", "", "", "true", []byte(`{"data":[{"status":"processed","transactionId":"t1"},{"status":"error","error":["x"]}]}`))
	f.Add(429, "120", "0", "1755500000", "", []byte(`{"message":"Too many requests"}`))
	f.Add(422, "", "", "", "", []byte(`{"statusCode":422,"message":["payload must be an object"],"error":"Unprocessable Entity"}`))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", "", "", "", []byte(`<html>`))
	f.Add(401, "", "", "", "", []byte(`{"message":"`+strings.Repeat("é", 400)+`"}`))
	f.Add(0, "-1", "x", "9999999999999999999", "", []byte(nil))
	f.Fuzz(func(t *testing.T, code int, retryAfter, remaining, reset, replay string, body []byte) {
		a := Answer{StatusCode: code, Body: body, Header: Header{
			RetryAfter: retryAfter, RateLimitRemaining: remaining, RateLimitReset: reset, IdempotencyReplay: replay,
		}}
		checkResult(t, "Classify", Classify(a, now))
		for n := range 4 {
			txIDs := []string{"t1", "t2", "t3"}[:min(n, 3)]
			call, items := ClassifyBulk(a, txIDs, now)
			checkResult(t, "ClassifyBulk call", call)
			if len(items) != len(txIDs) {
				t.Fatalf("ClassifyBulk: %d results for %d triggers", len(items), len(txIDs))
			}
			for _, it := range items {
				checkResult(t, "ClassifyBulk item", it)
			}
		}
	})
}
