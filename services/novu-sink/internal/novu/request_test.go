package novu

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

func TestAppendTrigger(t *testing.T) {
	tests := []struct {
		name  string
		given events.TriggerCommand
		want  string
	}{
		{
			name: "subscriber with profile",
			given: events.TriggerCommand{
				WorkflowID: "welcome",
				To: events.Recipient{Subscriber: &events.Subscriber{
					SubscriberID: "user_1", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com",
					Phone: "+4412345", Avatar: "https://img/a.png", Locale: "en-GB", Timezone: "Europe/London",
					Data: map[string]string{"plan": "pro", "org": "acme"},
				}},
				Payload:       json.RawMessage(`{"id":"user_1","n":12345678901234567890}`),
				TransactionID: "txn_1",
			},
			want: `{"name":"welcome","to":{"subscriberId":"user_1","firstName":"Ada","lastName":"Lovelace","email":"ada@example.com","phone":"+4412345","avatar":"https://img/a.png","locale":"en-GB","timezone":"Europe/London","data":{"org":"acme","plan":"pro"}},"payload":{"id":"user_1","n":12345678901234567890},"transactionId":"txn_1"}`,
		},
		{
			name: "bare subscriber",
			given: events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "u"}},
				Payload: json.RawMessage(`{}`), TransactionID: "t"},
			want: `{"name":"w","to":{"subscriberId":"u"},"payload":{},"transactionId":"t"}`,
		},
		{
			name: "topic with exclusions",
			given: events.TriggerCommand{WorkflowID: "role-created", To: events.Recipient{Topic: &events.Topic{TopicKey: "org:admins", Exclude: []string{"u1", "u2"}}},
				Payload: json.RawMessage(`{"a":1}`), TransactionID: "t"},
			want: `{"name":"role-created","to":{"type":"Topic","topicKey":"org:admins","exclude":["u1","u2"]},"payload":{"a":1},"transactionId":"t"}`,
		},
		{
			name: "topic",
			given: events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Topic: &events.Topic{TopicKey: "ops"}},
				Payload: json.RawMessage(`{}`), TransactionID: "t"},
			want: `{"name":"w","to":{"type":"Topic","topicKey":"ops"},"payload":{},"transactionId":"t"}`,
		},
		{
			name: "payload bytes unchanged: whitespace, HTML, unicode escapes, big numbers",
			given: events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "u"}},
				Payload:       json.RawMessage("{ \"html\": \"<b>&amp;</b>\",\n \"esc\":\"\\u00e9\", \"big\": 1e400, \"n\": 123456789012345678901234567890 }"),
				TransactionID: "t"},
			want: "{\"name\":\"w\",\"to\":{\"subscriberId\":\"u\"},\"payload\":{ \"html\": \"<b>&amp;</b>\",\n \"esc\":\"\\u00e9\", \"big\": 1e400, \"n\": 123456789012345678901234567890 },\"transactionId\":\"t\"}",
		},
		{
			name: "missing payload becomes {}",
			given: events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "u"}},
				TransactionID: "t"},
			want: `{"name":"w","to":{"subscriberId":"u"},"payload":{},"transactionId":"t"}`,
		},
		{
			name: "null payload becomes {}",
			given: events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "u"}},
				Payload: json.RawMessage(`null`), TransactionID: "t"},
			want: `{"name":"w","to":{"subscriberId":"u"},"payload":{},"transactionId":"t"}`,
		},
		{
			name: "strings escaped",
			given: events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Subscriber: &events.Subscriber{
				SubscriberID: "u", FirstName: "Zoë \"Q\" \\ <x>", LastName: "tab\tnl\nnul\x00\u2028", Email: "bad\xffutf8"}},
				Payload: json.RawMessage(`{}`), TransactionID: "t"},
			want: `{"name":"w","to":{"subscriberId":"u","firstName":"Zoë \"Q\" \\ <x>","lastName":"tab\tnl\nnul\u0000\u2028","email":"bad\ufffdutf8"},"payload":{},"transactionId":"t"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendTrigger(nil, &tt.given))
			if got != tt.want {
				t.Fatalf("AppendTrigger =\n%s\nwant\n%s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("AppendTrigger output is not valid JSON: %s", got)
			}
		})
	}
}

func TestAppendBulk(t *testing.T) {
	a := &events.TriggerCommand{WorkflowID: "a", To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "1"}}, Payload: json.RawMessage(`{}`), TransactionID: "t1"}
	b := &events.TriggerCommand{WorkflowID: "b", To: events.Recipient{Topic: &events.Topic{TopicKey: "k"}}, Payload: json.RawMessage(`{"x":1}`), TransactionID: "t2"}
	got := string(AppendBulk(nil, []*events.TriggerCommand{a, b}))
	want := `{"events":[{"name":"a","to":{"subscriberId":"1"},"payload":{},"transactionId":"t1"},{"name":"b","to":{"type":"Topic","topicKey":"k"},"payload":{"x":1},"transactionId":"t2"}]}`
	if got != want {
		t.Fatalf("AppendBulk =\n%s\nwant\n%s", got, want)
	}
}

func TestAppendTriggerIsDeterministic(t *testing.T) {
	data := map[string]string{}
	for _, k := range []string{"z", "a", "m", "b", "y", "c"} {
		data[k] = k
	}
	c := &events.TriggerCommand{WorkflowID: "w", To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "u", Data: data}}, TransactionID: "t"}
	first := string(AppendTrigger(nil, c))
	for range 20 {
		if got := string(AppendTrigger(nil, c)); got != first {
			t.Fatalf("AppendTrigger changed between calls:\n%s\n%s", first, got)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name    string
		base    string
		attempt int
		want    string
	}{
		{name: "first attempt is the transactionId", base: "txn_abc", attempt: 0, want: "txn_abc"},
		{name: "after a replayed error", base: "txn_abc", attempt: 1, want: "txn_abc-1"},
		{name: "twice spent", base: "txn_abc", attempt: 2, want: "txn_abc-2"},
		{name: "too long is hashed", base: long, attempt: 0, want: "key_" + hashPrefix(long)},
		{name: "too long with suffix", base: long, attempt: 3, want: "key_" + hashPrefix(long) + "-3"},
		{name: "exactly 255 stays", base: strings.Repeat("y", 255), attempt: 0, want: strings.Repeat("y", 255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IdempotencyKey(tt.base, tt.attempt)
			if got != tt.want {
				t.Errorf("IdempotencyKey = %q, want %q", got, tt.want)
			}
			if len(got) > MaxIdempotencyKeyLen {
				t.Errorf("key is %d chars, want at most %d", len(got), MaxIdempotencyKeyLen)
			}
		})
	}
}

func hashPrefix(s string) string {
	k := IdempotencyKey(s, 0)
	return strings.TrimPrefix(k, "key_")
}

func TestBulkKey(t *testing.T) {
	a, b := BulkKey([]string{"t1", "t2"}), BulkKey([]string{"t1", "t2"})
	if a != b || !strings.HasPrefix(a, "bulk_") || len(a) != len("bulk_")+32 {
		t.Fatalf("BulkKey = %q, %q; want a stable bulk_<32 hex>", a, b)
	}
	if BulkKey([]string{"t2", "t1"}) == a || BulkKey([]string{"t1t2"}) == a || BulkKey([]string{"t1"}) == a {
		t.Errorf("BulkKey collides for another set or order of events")
	}
}

func BenchmarkAppendTrigger(b *testing.B) {
	c := &events.TriggerCommand{
		WorkflowID: "user-created",
		To: events.Recipient{Subscriber: &events.Subscriber{
			SubscriberID: "user_2abc", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com",
			Data: map[string]string{"plan": "pro"},
		}},
		Payload:       json.RawMessage(`{"id":"user_2abc","email_addresses":[{"email_address":"ada@example.com","id":"idn_1"}],"first_name":"Ada","last_name":"Lovelace","created_at":1716883200000,"public_metadata":{"plan":"pro"}}`),
		TransactionID: "txn_0123456789abcdef0123456789abcdef",
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendTrigger(nil, c))))
	for b.Loop() {
		buf = AppendTrigger(buf[:0], c)
	}
}

func BenchmarkAppendBulk100(b *testing.B) {
	cmds := make([]*events.TriggerCommand, MaxBulkEvents)
	for i := range cmds {
		cmds[i] = &events.TriggerCommand{
			WorkflowID:    "user-created",
			To:            events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "user_2abc", Email: "ada@example.com"}},
			Payload:       json.RawMessage(`{"id":"user_2abc","first_name":"Ada"}`),
			TransactionID: "txn_0123456789abcdef0123456789abcdef",
		}
	}
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBulk(buf[:0], cmds)
	}
}
