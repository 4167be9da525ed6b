package events

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestSubscriberLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "subscriber", Subscriber{SubscriberID: "user_1", Email: "a@example.com", Data: map[string]string{"clerkUserId": "user_1"}})
	got := buf.String()
	for _, want := range []string{"subscriber.subscriberId=user_1", "subscriber.email=a@example.com", "subscriber.data.clerkUserId=user_1"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "firstName") {
		t.Errorf("log line %q holds an empty field", got)
	}
}
