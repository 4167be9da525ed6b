package stack_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
)

// TestStackSyncsSubscribers: devstack turns sync on, so a signed
// user.created webhook ends as a Novu subscriber with the primary email, and
// user.deleted removes it, through receiver, router and sink.
func TestStackSyncsSubscribers(t *testing.T) {
	st, fake, _ := startStack(t)
	created, ok := samples.Get("user.created")
	if !ok {
		t.Fatal("no user.created sample")
	}
	var ev struct {
		Data struct {
			ID                    string `json:"id"`
			PrimaryEmailAddressID string `json:"primary_email_address_id"`
			EmailAddresses        []struct {
				ID           string `json:"id"`
				EmailAddress string `json:"email_address"`
			} `json:"email_addresses"`
		} `json:"data"`
	}
	if err := json.Unmarshal(created.Body, &ev); err != nil {
		t.Fatal(err)
	}
	var primary string
	for _, e := range ev.Data.EmailAddresses {
		if e.ID == ev.Data.PrimaryEmailAddressID {
			primary = e.EmailAddress
		}
	}
	if primary == "" {
		t.Fatal("the sample has no primary email")
	}
	if code := post(t, st, samples.NewSvixID(), created.Body, nil); code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	eventstest.Eventually(t, 10*time.Second, "the subscriber upserted with the primary email", func() bool {
		s, ok := fake.Subscriber(ev.Data.ID)
		return ok && s.Field("email") == primary
	})
	deleted := []byte(`{"data":{"deleted":true,"id":"` + ev.Data.ID + `","object":"user"},"object":"event","timestamp":` +
		jsonInt(time.Now().UnixMilli()) + `,"type":"user.deleted"}`)
	if code := post(t, st, samples.NewSvixID(), deleted, nil); code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	eventstest.Eventually(t, 10*time.Second, "the subscriber deleted", func() bool {
		_, ok := fake.Subscriber(ev.Data.ID)
		return !ok
	})
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
