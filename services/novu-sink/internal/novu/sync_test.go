package novu

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
)

func TestSyncCallsAgainstTheFake(t *testing.T) {
	fake := novufake.NewServer("k")
	t.Cleanup(fake.Close)
	c, err := New(Config{BaseURL: fake.URL, SecretKey: "k", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	zoe := &events.Subscriber{SubscriberID: "user_1", FirstName: "Zoë", Email: "zoe@example.com", Phone: "+33612345678",
		Locale: "fr-FR", Data: map[string]string{"clerkUserId": "user_1", "username": "zoe_n"}}
	if a := c.UpsertSubscriber(ctx, zoe); a.StatusCode != 201 {
		t.Fatalf("upsert = %+v", a)
	}
	// Clerk removed the phone: the upsert clears it in Novu instead of keeping it.
	zoe2 := *zoe
	zoe2.Phone, zoe2.Email = "", "zoe.new@example.com"
	if a := c.UpsertSubscriber(ctx, &zoe2); a.StatusCode != 201 {
		t.Fatalf("update = %+v", a)
	}
	s, ok := fake.Subscriber("user_1")
	if !ok || s.Field("email") != "zoe.new@example.com" || s.Fields["phone"] != nil || s.Field("firstName") != "Zoë" ||
		string(s.Data) != `{"clerkUserId":"user_1","username":"zoe_n"}` {
		t.Fatalf("subscriber = %+v", s)
	}
	if _, set := s.Fields["timezone"]; set {
		t.Error("timezone sent: it is not Clerk's to clear")
	}
	if a := c.AddSubscriptions(ctx, "org-org_1", []string{"user_1"}); a.StatusCode != 201 {
		t.Fatalf("add = %+v", a)
	}
	if ids, _ := fake.Topic("org-org_1"); !slices.Equal(ids, []string{"user_1"}) {
		t.Errorf("topic = %v", ids)
	}
	if a := c.RemoveSubscriptions(ctx, "org-org_1", []string{"user_1"}); a.StatusCode != 200 {
		t.Fatalf("remove = %+v", a)
	}
	if ids, _ := fake.Topic("org-org_1"); len(ids) != 0 {
		t.Errorf("topic = %v", ids)
	}
	if a := c.DeleteTopic(ctx, "org-org_1"); a.StatusCode != 200 {
		t.Fatalf("delete topic = %+v", a)
	}
	if a := c.DeleteSubscriber(ctx, "user_1"); a.StatusCode != 200 {
		t.Fatalf("delete = %+v", a)
	}
	if a := c.DeleteSubscriber(ctx, "user_1"); a.StatusCode != 404 {
		t.Fatalf("second delete = %+v", a)
	}
	if _, ok := fake.Subscriber("user_1"); ok {
		t.Error("subscriber still there")
	}
}

func TestAppendUpsertSubscriber(t *testing.T) {
	got := string(AppendUpsertSubscriber(nil, &events.Subscriber{SubscriberID: "u", FirstName: "美咲 <b>", Data: map[string]string{"b": "2", "a": "1"}}))
	want := `{"subscriberId":"u","firstName":"美咲 <b>","lastName":null,"email":null,"phone":null,"avatar":null,"locale":null,"data":{"a":"1","b":"2"}}`
	if got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
	if got := string(AppendUpsertSubscriber(nil, &events.Subscriber{SubscriberID: "u"})); !strings.HasSuffix(got, `,"data":{}}`) {
		t.Errorf("no data: %s, want data {}", got)
	}
}
