package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var txnFormat = regexp.MustCompile(`^txn_[0-9a-f]{32}$`)

func TestTransactionID(t *testing.T) {
	const svix, wf = "msg_31Rw443GHnAnQGYn9xZeAhWJRbt", "welcome-email"
	id := TransactionID(svix, wf)
	if !txnFormat.MatchString(id) {
		t.Fatalf("TransactionID = %q, want txn_ + 32 hex", id)
	}
	if again := TransactionID(svix, wf); again != id {
		t.Errorf("not deterministic: %q then %q", id, again)
	}
	if err := ValidateToken(id); err != nil {
		t.Errorf("%q is not usable as a Nats-Msg-Id token: %v", id, err)
	}
	tests := []struct {
		name         string
		svixID, wfID string
	}{
		{name: "another workflow", svixID: svix, wfID: "welcome-sms"},
		{name: "another svix-id", svixID: "msg_31Rw443GHnAnQGYn9xZeAhWJRbu", wfID: wf},
		{name: "bytes moved across the separator", svixID: svix + "w", wfID: "elcome-email"},
		{name: "empty workflow", svixID: svix, wfID: ""},
		{name: "empty svix-id", svixID: "", wfID: wf},
	}
	seen := map[string]string{id: "base"}
	for _, tt := range tests {
		got := TransactionID(tt.svixID, tt.wfID)
		if !txnFormat.MatchString(got) {
			t.Errorf("%s: %q is not txn_ + 32 hex", tt.name, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: same id as %s: %q", tt.name, prev, got)
		}
		seen[got] = tt.name
	}
}

func validCommand() TriggerCommand {
	return TriggerCommand{
		WorkflowID: "welcome-email",
		To: Recipient{Subscriber: &Subscriber{
			SubscriberID: "user_31Rw443GHnAnQGYn9xZeAhWJRbt",
			FirstName:    "Zoë",
			LastName:     "中村 🚀",
			Email:        "zoe.nakamura@example.jp",
			Phone:        "+14155550123",
			Locale:       "ja-JP",
			Data:         map[string]string{"clerkUserId": "user_31Rw443GHnAnQGYn9xZeAhWJRbt"},
		}},
		Payload:        json.RawMessage(`{"id":"user_31Rw443GHnAnQGYn9xZeAhWJRbt","n":9007199254740993,"html":"\u003cb\u003e"}`),
		TransactionID:  TransactionID("msg_31Rw443GHnAnQGYn9xZeAhWJRbt", "welcome-email"),
		SvixID:         "msg_31Rw443GHnAnQGYn9xZeAhWJRbt",
		EventType:      "user.created",
		EventTimestamp: 1755500000000,
		ReceivedAt:     1755500000123,
	}
}

func TestTriggerCommandRoundTrip(t *testing.T) {
	for _, c := range []TriggerCommand{
		validCommand(),
		{WorkflowID: "role-changed", To: Recipient{Topic: &Topic{TopicKey: "admins", Exclude: []string{"user_1"}}},
			Payload: json.RawMessage(`{}`), TransactionID: "txn_1", SvixID: "msg_1", EventType: "role.updated"},
	} {
		body, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCommand(body)
		if err != nil {
			t.Fatalf("ParseCommand(%s): %v", body, err)
		}
		if !bytes.Equal(got.Payload, c.Payload) {
			t.Errorf("payload %s, want byte for byte %s", got.Payload, c.Payload)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
}

func TestTriggerCommandWireNames(t *testing.T) {
	c := validCommand()
	c.To.Subscriber.Avatar, c.To.Subscriber.Timezone, c.EventTimestamp = "", "", 0
	body, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"workflowId":"welcome-email"`, `"transactionId":"txn_`, `"svixId":"msg_`, `"eventType":"user.created"`,
		`"subscriberId":"user_`, `"firstName":"Zoë"`, `"receivedAt":1755500000123`, `"n":9007199254740993`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("%s lacks %s", body, want)
		}
	}
	for _, absent := range []string{`"avatar"`, `"timezone"`, `"eventTimestamp"`, `"topic"`, `null`} {
		if bytes.Contains(body, []byte(absent)) {
			t.Errorf("%s holds %s: empty fields must be omitted", body, absent)
		}
	}
}

func TestTriggerCommandValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*TriggerCommand)
		wantErr error
		reason  string
	}{
		{name: "valid", change: func(*TriggerCommand) {}},
		{name: "valid topic", change: func(c *TriggerCommand) { c.To = Recipient{Topic: &Topic{TopicKey: "admins"}} }},
		{name: "empty workflow", change: func(c *TriggerCommand) { c.WorkflowID = "" }, wantErr: ErrInvalidCommand, reason: "workflow id"},
		{name: "dotted workflow", change: func(c *TriggerCommand) { c.WorkflowID = "user.created" }, wantErr: ErrInvalidCommand, reason: "workflow id"},
		{name: "wildcard workflow", change: func(c *TriggerCommand) { c.WorkflowID = "welcome-*" }, wantErr: ErrInvalidCommand, reason: "workflow id"},
		{name: "no transaction id", change: func(c *TriggerCommand) { c.TransactionID = "" }, wantErr: ErrInvalidCommand, reason: "transactionId"},
		{name: "no recipient", change: func(c *TriggerCommand) { c.To = Recipient{} }, wantErr: ErrInvalidCommand, reason: "no recipient"},
		{name: "both", change: func(c *TriggerCommand) { c.To.Topic = &Topic{TopicKey: "admins"} }, wantErr: ErrInvalidCommand, reason: "both"},
		{name: "subscriber without id", change: func(c *TriggerCommand) { c.To.Subscriber.SubscriberID = "" }, wantErr: ErrInvalidCommand, reason: "subscriberId"},
		{name: "topic without key", change: func(c *TriggerCommand) { c.To = Recipient{Topic: &Topic{}} }, wantErr: ErrInvalidCommand, reason: "topicKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCommand()
			tt.change(&c)
			err := c.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			body, _ := EncodeCommand(c)
			if _, perr := ParseCommand(body); !errors.Is(perr, tt.wantErr) {
				t.Errorf("ParseCommand error %v, want %v", perr, tt.wantErr)
			}
		})
	}
}

func TestParseCommandNotJSON(t *testing.T) {
	for _, body := range []string{``, `nope`, `[]`, `{"workflowId":7}`, `{"workflowId":"w","to":`} {
		_, err := ParseCommand([]byte(body))
		if !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("ParseCommand(%q) = %v, want ErrInvalidCommand", body, err)
		}
	}
}
