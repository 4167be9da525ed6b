package outcome

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func body(status string) []byte {
	return []byte(`{"data":{"acknowledged":true,"status":"` + status + `","transactionId":"txn_1"}}`)
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name           string
		given          Answer
		want           Action
		wantStatus     string
		wantReason     string // substring
		wantRetryAfter time.Duration
		wantKeySpent   bool
		wantUnknown    bool
		wantHint       string         // substring
		wantBreaker    BreakerVerdict // 0: not checked
		wantBackPress  bool
	}{
		{name: "201 processed", given: Answer{StatusCode: 201, Body: body("processed")}, want: Deliver, wantStatus: "processed", wantBreaker: BreakerSuccess},
		{name: "200 processed", given: Answer{StatusCode: 200, Body: body("processed")}, want: Deliver, wantStatus: "processed", wantBreaker: BreakerSuccess},
		{name: "201 unwrapped processed", given: Answer{StatusCode: 201, Body: []byte(`{"acknowledged":true,"status":"processed"}`)}, want: Deliver, wantStatus: "processed"},
		{name: "201 replayed processed", given: Answer{StatusCode: 201, Body: body("processed"), Header: Header{IdempotencyReplay: "true"}}, want: Deliver, wantStatus: "processed"},
		{name: "201 trigger_not_active", given: Answer{StatusCode: 201, Body: body("trigger_not_active")}, want: DeadLetter, wantStatus: "trigger_not_active", wantReason: "novu 201: trigger_not_active", wantBreaker: BreakerSuccess},
		{name: "201 no_workflow_active_steps_defined", given: Answer{StatusCode: 201, Body: body("no_workflow_active_steps_defined")}, want: DeadLetter, wantReason: "no_workflow_active_steps_defined"},
		{name: "201 no_workflow_steps_defined", given: Answer{StatusCode: 201, Body: body("no_workflow_steps_defined")}, want: DeadLetter, wantReason: "no_workflow_steps_defined"},
		{name: "201 no_tenant_found", given: Answer{StatusCode: 201, Body: body("no_tenant_found")}, want: DeadLetter, wantReason: "no_tenant_found"},
		{name: "201 invalid_recipients", given: Answer{StatusCode: 201, Body: body("invalid_recipients")}, want: DeadLetter, wantReason: "invalid_recipients"},
		{name: "201 error with messages", given: Answer{StatusCode: 201, Body: []byte(`{"data":{"acknowledged":true,"status":"error","error":["workflow_not_found"]}}`)}, want: DeadLetter, wantReason: "novu 201: error: workflow_not_found"},
		{name: "201 unknown status", given: Answer{StatusCode: 201, Body: body("queued_for_later")}, want: DeadLetter, wantUnknown: true, wantReason: `unknown status "queued_for_later"`, wantStatus: "queued_for_later"},
		{name: "201 undecodable", given: Answer{StatusCode: 201, Body: []byte(`<html>`)}, want: Retry, wantReason: "undecodable", wantBreaker: BreakerSuccess},
		{name: "201 empty data", given: Answer{StatusCode: 201, Body: []byte(`{"data":{}}`)}, want: Retry, wantReason: "no status"},
		{name: "400 payload validation", given: Answer{StatusCode: 400, Body: []byte(`{"statusCode":400,"type":"PAYLOAD_VALIDATION_ERROR","message":"Payload validation failed: x is required"}`)}, want: DeadLetter, wantReason: "novu 400: Payload validation failed: x is required", wantBreaker: BreakerSuccess},
		{name: "404", given: Answer{StatusCode: 404, Body: []byte(`{"message":"Cannot POST /v1/events/trigge"}`)}, want: DeadLetter, wantReason: "novu 404"},
		{name: "413", given: Answer{StatusCode: 413, Body: []byte(`{"message":"request entity too large"}`)}, want: DeadLetter, wantReason: "novu 413: request entity too large"},
		{name: "422 workflow_not_found", given: Answer{StatusCode: 422, Body: []byte(`{"statusCode":422,"message":"workflow_not_found","error":"Unprocessable Entity"}`)}, want: DeadLetter, wantReason: "novu 422: workflow_not_found", wantBreaker: BreakerSuccess},
		{name: "422 validation errors", given: Answer{StatusCode: 422, Body: []byte(`{"message":"Validation Error","errors":{"general":{"messages":["name should not be empty"],"value":"No Value Recorded"}}}`)}, want: DeadLetter, wantReason: "novu 422: Validation Error: general: name should not be empty"},
		{name: "422 message list", given: Answer{StatusCode: 422, Body: []byte(`{"message":["a","b"]}`)}, want: DeadLetter, wantReason: "novu 422: a; b"},
		{name: "422 replayed: stale, retried with a fresh key", given: Answer{StatusCode: 422, Body: []byte(`{}`), Header: Header{IdempotencyReplay: "true"}}, want: Retry, wantKeySpent: true, wantBreaker: BreakerSuccess},
		{name: "201 replayed trigger_not_active: stale, retried with a fresh key", given: Answer{StatusCode: 201, Body: body("trigger_not_active"), Header: Header{IdempotencyReplay: "true"}}, want: Retry, wantStatus: "trigger_not_active", wantKeySpent: true},
		{name: "401", given: Answer{StatusCode: 401, Body: []byte(`{"message":"Unauthorized"}`)}, want: Outage, wantReason: "novu 401: Unauthorized", wantHint: "NOVU_SECRET_KEY", wantBreaker: BreakerTrip},
		{name: "402", given: Answer{StatusCode: 402}, want: Outage, wantHint: "quota", wantBreaker: BreakerTrip},
		{name: "403", given: Answer{StatusCode: 403}, want: Outage, wantHint: "permission", wantBreaker: BreakerTrip},
		{name: "301", given: Answer{StatusCode: 301}, want: Outage, wantHint: "NOVU_API_URL", wantBreaker: BreakerTrip},
		{name: "408", given: Answer{StatusCode: 408}, want: Retry, wantReason: "novu 408", wantBreaker: BreakerFailure},
		{name: "409 in progress", given: Answer{StatusCode: 409, Header: Header{RetryAfter: "1"}, Body: []byte(`{"message":"Request with key \"k\" is currently being processed. Please retry after 1 second"}`)}, want: Retry, wantRetryAfter: time.Second, wantReason: "currently being processed", wantBreaker: BreakerIgnore, wantBackPress: true},
		{name: "429 retry-after seconds", given: Answer{StatusCode: 429, Header: Header{RetryAfter: "3"}, Body: []byte(`{"statusCode":429,"message":"API rate limit exceeded"}`)}, want: Retry, wantRetryAfter: 3 * time.Second, wantReason: "novu 429: API rate limit exceeded", wantBreaker: BreakerIgnore, wantBackPress: true},
		{name: "429 retry-after date", given: Answer{StatusCode: 429, Header: Header{RetryAfter: "Mon, 04 May 2026 10:00:07 GMT"}}, want: Retry, wantRetryAfter: 7 * time.Second, wantBackPress: true},
		{name: "500", given: Answer{StatusCode: 500, Body: []byte(`{"message":"Internal server error","errorId":"e1"}`)}, want: Retry, wantReason: "novu 500: Internal server error", wantBreaker: BreakerMessageFailure},
		{name: "503 retry-after", given: Answer{StatusCode: 503, Header: Header{RetryAfter: "2"}}, want: Retry, wantRetryAfter: 2 * time.Second, wantBreaker: BreakerMessageFailure, wantBackPress: true},
		{name: "503 replayed: key spent", given: Answer{StatusCode: 503, Header: Header{IdempotencyReplay: "true"}}, want: Retry, wantKeySpent: true, wantBreaker: BreakerMessageFailure},
		{name: "503 html body", given: Answer{StatusCode: 503, Body: []byte("<html>\nbad gateway</html>")}, want: Retry, wantReason: "novu 503: <html> bad gateway</html>"},
		{name: "timeout", given: Answer{Err: Timeout, ErrDetail: "context deadline exceeded"}, want: Retry, wantReason: "novu timeout: context deadline exceeded", wantBreaker: BreakerFailure},
		{name: "connection refused", given: Answer{Err: Connection, ErrDetail: "dial tcp 127.0.0.1:1: connect: connection refused"}, want: Retry, wantReason: "novu connection: dial tcp", wantBreaker: BreakerFailure},
		{name: "canceled", given: Answer{Err: Canceled, ErrDetail: "context canceled"}, want: Retry, wantBreaker: BreakerIgnore},
		{name: "1xx", given: Answer{StatusCode: 102}, want: Retry, wantBreaker: BreakerFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.given, now)
			if got.Action != tt.want {
				t.Fatalf("Action = %v, want %v (reason %q)", got.Action, tt.want, got.Reason)
			}
			if tt.wantStatus != "" && got.Status != tt.wantStatus {
				t.Errorf("Status = %q, want %q", got.Status, tt.wantStatus)
			}
			if !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.wantReason)
			}
			if strings.ContainsAny(got.Reason, "\r\n") {
				t.Errorf("Reason %q is not one line", got.Reason)
			}
			if got.RetryAfter != tt.wantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", got.RetryAfter, tt.wantRetryAfter)
			}
			if got.KeySpent != tt.wantKeySpent {
				t.Errorf("KeySpent = %v, want %v", got.KeySpent, tt.wantKeySpent)
			}
			if got.UnknownStatus != tt.wantUnknown {
				t.Errorf("UnknownStatus = %v, want %v", got.UnknownStatus, tt.wantUnknown)
			}
			if !strings.Contains(got.Hint, tt.wantHint) || (tt.wantHint == "" && got.Hint != "") {
				t.Errorf("Hint = %q, want %q", got.Hint, tt.wantHint)
			}
			if tt.wantBreaker != 0 && got.Breaker() != tt.wantBreaker {
				t.Errorf("Breaker() = %v, want %v", got.Breaker(), tt.wantBreaker)
			}
			if got.BackPressure() != tt.wantBackPress {
				t.Errorf("BackPressure() = %v, want %v", got.BackPressure(), tt.wantBackPress)
			}
		})
	}
}

func TestClassifyReasonIsBounded(t *testing.T) {
	long := strings.Repeat("é", 400)
	got := Classify(Answer{StatusCode: 422, Body: []byte(`{"message":"` + long + `"}`)}, now)
	if len(got.Reason) > maxReasonLen+len("…") {
		t.Fatalf("Reason is %d bytes, want at most %d", len(got.Reason), maxReasonLen+len("…"))
	}
	if !strings.HasSuffix(got.Reason, "é…") {
		t.Fatalf("Reason %q was cut inside a rune", got.Reason[len(got.Reason)-10:])
	}
}

func TestStatusLabel(t *testing.T) {
	if got := Classify(Answer{StatusCode: 422}, now).StatusLabel(); got != "422" {
		t.Errorf("StatusLabel = %q, want 422", got)
	}
	if got := Classify(Answer{Err: Timeout}, now).StatusLabel(); got != "error" {
		t.Errorf("StatusLabel = %q, want error", got)
	}
}

func TestClassifyBulk(t *testing.T) {
	txs := []string{"t1", "t2", "t3"}
	tests := []struct {
		name      string
		given     Answer
		wantCall  Action
		wantItems []Action
		wantFirst string // substring of the first item's reason
	}{
		{
			name: "per-item results",
			given: Answer{StatusCode: 201, Body: []byte(`{"data":[
				{"acknowledged":true,"status":"processed","transactionId":"t1"},
				{"acknowledged":true,"status":"error","error":["workflow_not_found"],"transactionId":"t2"},
				{"acknowledged":true,"status":"trigger_not_active","transactionId":"t3"}]}`)},
			wantCall:  Deliver,
			wantItems: []Action{Deliver, DeadLetter, DeadLetter},
		},
		{
			name: "items without transactionId match by position",
			given: Answer{StatusCode: 201, Body: []byte(`{"data":[
				{"acknowledged":true,"status":"processed"},{"acknowledged":true,"status":"processed"},{"acknowledged":true,"status":"processed"}]}`)},
			wantCall:  Deliver,
			wantItems: []Action{Deliver, Deliver, Deliver},
		},
		{
			name: "item for another transactionId is retried",
			given: Answer{StatusCode: 201, Body: []byte(`{"data":[
				{"status":"processed","transactionId":"t2"},{"status":"processed","transactionId":"t2"},{"status":"processed","transactionId":"t3"}]}`)},
			wantCall:  Deliver,
			wantItems: []Action{Retry, Deliver, Deliver},
			wantFirst: "another transactionId",
		},
		{
			name:      "wrong count: every item retried",
			given:     Answer{StatusCode: 201, Body: []byte(`{"data":[{"status":"processed"}]}`)},
			wantCall:  Retry,
			wantItems: []Action{Retry, Retry, Retry},
			wantFirst: "1 results for 3 events",
		},
		{
			name:      "whole call 503",
			given:     Answer{StatusCode: 503, Header: Header{RetryAfter: "2"}},
			wantCall:  Retry,
			wantItems: []Action{Retry, Retry, Retry},
			wantFirst: "novu 503",
		},
		{
			name:      "whole call 422",
			given:     Answer{StatusCode: 422, Body: []byte(`{"message":"events must contain no more than 100 elements"}`)},
			wantCall:  DeadLetter,
			wantItems: []Action{DeadLetter, DeadLetter, DeadLetter},
			wantFirst: "no more than 100",
		},
		{
			name:      "whole call 401",
			given:     Answer{StatusCode: 401},
			wantCall:  Outage,
			wantItems: []Action{Outage, Outage, Outage},
		},
		{
			name:      "timeout",
			given:     Answer{Err: Timeout, ErrDetail: "deadline"},
			wantCall:  Retry,
			wantItems: []Action{Retry, Retry, Retry},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, items := ClassifyBulk(tt.given, txs, now)
			if call.Action != tt.wantCall {
				t.Errorf("call Action = %v, want %v (%s)", call.Action, tt.wantCall, call.Reason)
			}
			if len(items) != len(tt.wantItems) {
				t.Fatalf("got %d items, want %d", len(items), len(tt.wantItems))
			}
			for i, it := range items {
				if it.Action != tt.wantItems[i] {
					t.Errorf("item %d Action = %v, want %v (%s)", i, it.Action, tt.wantItems[i], it.Reason)
				}
			}
			if !strings.Contains(items[0].Reason, tt.wantFirst) {
				t.Errorf("item 0 Reason = %q, want it to contain %q", items[0].Reason, tt.wantFirst)
			}
		})
	}
}

func TestDecodeTrigger(t *testing.T) {
	tests := []struct {
		name    string
		given   string
		want    TriggerResponse
		wantErr error
	}{
		{name: "wrapped", given: `{"data":{"acknowledged":true,"status":"processed","transactionId":"x","activityFeedLink":"https://d"}}`, want: TriggerResponse{Acknowledged: true, Status: "processed", TransactionID: "x"}},
		{name: "any status string", given: `{"data":{"acknowledged":true,"status":"brand_new"}}`, want: TriggerResponse{Acknowledged: true, Status: "brand_new"}},
		{name: "unwrapped", given: `{"acknowledged":true,"status":"processed"}`, want: TriggerResponse{Acknowledged: true, Status: "processed"}},
		{name: "not json", given: `nope`, wantErr: ErrUndecodable},
		{name: "data of wrong type", given: `{"data":[1]}`, wantErr: ErrUndecodable},
		{name: "no status", given: `{"data":{"acknowledged":true}}`, wantErr: ErrUndecodable},
		{name: "empty object", given: `{}`, wantErr: ErrUndecodable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTrigger([]byte(tt.given))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.Status != tt.want.Status || got.Acknowledged != tt.want.Acknowledged || got.TransactionID != tt.want.TransactionID {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeBulk(t *testing.T) {
	got, err := DecodeBulk([]byte(`{"data":[{"status":"processed"},{"status":"error","error":["x"]}]}`))
	if err != nil {
		t.Fatalf("DecodeBulk: %v", err)
	}
	if len(got) != 2 || got[1].Status != "error" || len(got[1].Error) != 1 {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{`{"data":{"status":"processed"}}`, `{}`, `[`} {
		if _, err := DecodeBulk([]byte(bad)); !errors.Is(err, ErrUndecodable) {
			t.Errorf("DecodeBulk(%s) err = %v, want ErrUndecodable", bad, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		given  string
		want   time.Duration
		wantOK bool
	}{
		{given: "", wantOK: false},
		{given: "0", want: 0, wantOK: true},
		{given: "1", want: time.Second, wantOK: true},
		{given: " 120 ", want: 2 * time.Minute, wantOK: true},
		{given: "1.5", want: 1500 * time.Millisecond, wantOK: true},
		{given: "-1", wantOK: false},
		{given: "soon", wantOK: false},
		{given: "NaN", wantOK: false},
		{given: "Mon, 04 May 2026 10:00:30 GMT", want: 30 * time.Second, wantOK: true},
		{given: "Monday, 04-May-26 10:01:00 GMT", want: time.Minute, wantOK: true},
		{given: "Mon May  4 10:00:05 2026", want: 5 * time.Second, wantOK: true},
		{given: "Mon, 04 May 2026 09:00:00 GMT", want: 0, wantOK: true}, // in the past
		{given: "99999999999999999999", want: time.Duration(int64(1<<63-1) / int64(time.Second) * int64(time.Second)), wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.given, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.given, now)
			if ok != tt.wantOK || got != tt.want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.given, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRateLimitPause(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		h      Header
		want   time.Duration
		wantOK bool
	}{
		{name: "plenty left", code: 201, h: Header{RateLimitRemaining: "299", RateLimitReset: "1"}},
		{name: "no headers", code: 201},
		{name: "bucket empty", code: 201, h: Header{RateLimitRemaining: "0", RateLimitReset: "3"}, want: 3 * time.Second, wantOK: true},
		{name: "bucket empty, no reset", code: 201, h: Header{RateLimitRemaining: "0"}},
		{name: "429 retry-after", code: 429, h: Header{RetryAfter: "2", RateLimitRemaining: "0", RateLimitReset: "5"}, want: 2 * time.Second, wantOK: true},
		{name: "429 reset only", code: 429, h: Header{RateLimitReset: "4"}, want: 4 * time.Second, wantOK: true},
		{name: "429 bare", code: 429, want: time.Second, wantOK: true},
		{name: "garbage remaining", code: 201, h: Header{RateLimitRemaining: "x", RateLimitReset: "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RateLimitPause(tt.code, tt.h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("RateLimitPause = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
