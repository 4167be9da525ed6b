package outcome

import (
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
)

func TestClassifySync(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const notFound = `{"statusCode":404,"message":"Subscriber was not found"}`
	tests := []struct {
		name       string
		kind       string
		answer     Answer
		want       Action
		status     string
		retryAfter time.Duration
	}{
		{name: "upsert 201", kind: events.SyncSubscriberUpsert, answer: Answer{StatusCode: 201, Body: []byte(`{"data":{"subscriberId":"u"}}`)}, want: Deliver},
		{name: "upsert 422 (a bad email)", kind: events.SyncSubscriberUpsert, answer: Answer{StatusCode: 422, Body: []byte(`{"message":"Validation Error"}`)}, want: DeadLetter},
		{name: "upsert 404 is not a success", kind: events.SyncSubscriberUpsert, answer: Answer{StatusCode: 404, Body: []byte(notFound)}, want: DeadLetter},
		{name: "delete 200", kind: events.SyncSubscriberDelete, answer: Answer{StatusCode: 200, Body: []byte(`{"data":{"acknowledged":true,"status":"deleted"}}`)}, want: Deliver},
		{name: "delete 404 counts as done", kind: events.SyncSubscriberDelete, answer: Answer{StatusCode: 404, Body: []byte(notFound)}, want: Deliver, status: StatusAlreadyDone},
		{name: "topic delete 404 counts as done", kind: events.SyncTopicDelete, answer: Answer{StatusCode: 404}, want: Deliver, status: StatusAlreadyDone},
		{name: "remove from an unknown topic counts as done", kind: events.SyncTopicRemove, answer: Answer{StatusCode: 404}, want: Deliver, status: StatusAlreadyDone},
		{name: "429 on configuration retries after Retry-After", kind: events.SyncSubscriberUpsert,
			answer: Answer{StatusCode: 429, Header: Header{RetryAfter: "3"}}, want: Retry, retryAfter: 3 * time.Second},
		{name: "503 retries", kind: events.SyncTopicAdd, answer: Answer{StatusCode: 503}, want: Retry},
		{name: "timeout retries", kind: events.SyncSubscriberDelete, answer: Answer{Err: Timeout, ErrDetail: "deadline"}, want: Retry},
		{name: "403 is an outage", kind: events.SyncTopicAdd, answer: Answer{StatusCode: 403}, want: Outage},
		{name: "add 201 with every id", kind: events.SyncTopicAdd,
			answer: Answer{StatusCode: 201, Body: []byte(`{"data":[{"_id":"s"}],"meta":{"totalCount":1,"successful":1,"failed":0},"errors":[]}`)}, want: Deliver},
		{name: "add of a subscriber Novu does not know yet retries", kind: events.SyncTopicAdd,
			answer: Answer{StatusCode: 201, Body: []byte(`{"data":[],"meta":{"totalCount":1,"successful":0,"failed":1},"errors":[{"subscriberId":"u","code":"SUBSCRIBER_NOT_FOUND"}]}`)}, want: Retry},
		{name: "add with another item error dead-letters", kind: events.SyncTopicAdd,
			answer: Answer{StatusCode: 201, Body: []byte(`{"data":[],"meta":{},"errors":[{"subscriberId":"u","code":"SUBSCRIPTION_LIMIT_EXCEEDED"}]}`)}, want: DeadLetter},
		{name: "removal of what is not subscribed is done", kind: events.SyncTopicRemove,
			answer: Answer{StatusCode: 200, Body: []byte(`{"data":[],"meta":{},"errors":[{"subscriberId":"u","code":"SUBSCRIPTION_NOT_FOUND"}]}`)}, want: Deliver},
		{name: "removal without errors (left out)", kind: events.SyncTopicRemove,
			answer: Answer{StatusCode: 200, Body: []byte(`{"data":[{"_id":"s"}],"meta":{"totalCount":1,"successful":1,"failed":0}}`)}, want: Deliver},
		{name: "undecodable subscriptions answer retries", kind: events.SyncTopicAdd, answer: Answer{StatusCode: 201, Body: []byte(`<html>`)}, want: Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ClassifySync(tt.kind, tt.answer, now)
			if r.Action != tt.want || r.Status != tt.status || r.RetryAfter != tt.retryAfter {
				t.Errorf("ClassifySync = %v status %q retry after %v (%s), want %v %q %v", r.Action, r.Status, r.RetryAfter, r.Reason, tt.want, tt.status, tt.retryAfter)
			}
			if r.Action == Outage && r.Hint == "" {
				t.Error("outage without a hint")
			}
		})
	}
}
