package events

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSyncCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		cmd     SyncCommand
		subject string
	}{
		{
			name: "upsert with a unicode profile and HTML-looking data",
			cmd: SyncCommand{Kind: SyncSubscriberUpsert, ID: SyncID("msg_1", SyncSubscriberUpsert, "user_1"),
				Subscriber: &Subscriber{SubscriberID: "user_1", FirstName: "美咲 🌸", Email: "a&b@example.com", Data: map[string]string{"clerkUserId": "user_1"}},
				SvixID:     "msg_1", EventType: "user.updated", EventTimestamp: 1755500000000, UpdatedAt: 1755499999898},
			subject: "novu.sync.subscriber.upsert",
		},
		{
			name:    "delete",
			cmd:     SyncCommand{Kind: SyncSubscriberDelete, ID: "sync_x", SubscriberID: "user_1", SvixID: "msg_2", EventType: "user.deleted"},
			subject: "novu.sync.subscriber.delete",
		},
		{
			name:    "topic add",
			cmd:     SyncCommand{Kind: SyncTopicAdd, ID: "sync_y", SubscriberID: "user_1", TopicKey: "org-org_1", OrganizationID: "org_1", SvixID: "msg_3"},
			subject: "novu.sync.topic.add",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := EncodeSyncCommand(tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), `\u0026`) {
				t.Errorf("HTML escaped: %s", body)
			}
			got, err := ParseSyncCommand(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.cmd) {
				t.Errorf("round trip = %+v, want %+v", got, tt.cmd)
			}
			if s, err := NovuSyncSubject(got.Kind); err != nil || s != tt.subject {
				t.Errorf("subject = %q, %v; want %q", s, err, tt.subject)
			}
		})
	}
}

func TestSyncCommandInvalid(t *testing.T) {
	for _, body := range []string{
		`{`,
		`{"kind":"subscriber.nuke","id":"x"}`,
		`{"kind":"subscriber.upsert","id":"x"}`,
		`{"kind":"subscriber.upsert","subscriber":{"subscriberId":"u"}}`,
		`{"kind":"topic.add","id":"x","subscriberId":"u","topicKey":"t"}`,
		`{"kind":"topic.delete","id":"x","topicKey":"t"}`,
	} {
		if _, err := ParseSyncCommand([]byte(body)); !errors.Is(err, ErrInvalidSyncCommand) {
			t.Errorf("%s: err = %v, want ErrInvalidSyncCommand", body, err)
		}
	}
}

func TestSyncID(t *testing.T) {
	a := SyncID("msg_1", SyncTopicAdd, "org-1/user_1")
	if a != SyncID("msg_1", SyncTopicAdd, "org-1/user_1") || !strings.HasPrefix(a, "sync_") || len(a) != 37 {
		t.Errorf("SyncID = %q, want a stable sync_ + 32 hex", a)
	}
	for _, b := range []string{SyncID("msg_2", SyncTopicAdd, "org-1/user_1"), SyncID("msg_1", SyncTopicRemove, "org-1/user_1"), SyncID("msg_1", SyncTopicAdd, "org-1/user_2")} {
		if a == b {
			t.Errorf("SyncID collides: %s", a)
		}
	}
}

// TestSyncStateTTL: the sync state outlives every replay window, so a late
// command cannot find its user's deletion forgotten.
func TestSyncStateTTL(t *testing.T) {
	for _, opts := range [][]StreamOption{nil, {WithMaxAge(90 * 24 * time.Hour)}, {WithDLQMaxAge(time.Hour)}} {
		kv := SyncStateKV(opts...)
		c := newStreamConfig(opts)
		if kv.TTL <= c.maxAge || kv.TTL <= c.dlqMaxAge || kv.Bucket != SyncStateBucket || kv.History != 1 {
			t.Errorf("SyncStateKV = %+v, max age %v, dlq %v", kv, c.maxAge, c.dlqMaxAge)
		}
	}
}
