package outcome

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
)

// Item error codes of Novu's subscription answers.
const (
	CodeSubscriberNotFound   = "SUBSCRIBER_NOT_FOUND"
	CodeSubscriptionNotFound = "SUBSCRIPTION_NOT_FOUND"
)

// StatusAlreadyDone is the [Result.Status] of a delete Novu answered 404:
// the subscriber or topic is already gone, which is what was asked.
const StatusAlreadyDone = "already_done"

// SubscriptionsResponse is Novu's answer to a subscription call, sent
// without a second {"data": ...} wrapper.
type SubscriptionsResponse struct {
	Data []json.RawMessage `json:"data"`
	// Errors lists the ids that failed; Novu leaves it out when none did.
	Errors []SubscriptionError `json:"errors"`
}

// SubscriptionError is one failed id of a subscription call.
type SubscriptionError struct {
	SubscriberID string `json:"subscriberId"`
	Code         string `json:"code"`
	Message      string `json:"message"`
}

// ClassifySync decides what to do after one subscriber or topic call of
// kind (an events.Sync* kind). It follows [Classify] for what is not
// particular to sync (transport errors, 408/409/429/5xx retried, 401/402/403
// and redirects an outage, other 4xx dead-lettered), and:
//
//   - a 404 on a subscriber delete, a topic delete or a removal from a topic
//     is [Deliver]: the subscriber, topic or subscription is already gone;
//   - a 2xx subscription answer is read item by item: an add whose
//     subscriber Novu does not know yet (SUBSCRIBER_NOT_FOUND, its upsert
//     still on the way) is [Retry]; a removal of what is not there is
//     [Deliver]; any other item error is [DeadLetter]. An undecodable
//     subscription answer is [Retry].
func ClassifySync(kind string, a Answer, now time.Time) Result {
	r := classifyCall(a, now, hintForbiddenSync)
	r.Response = a.Body
	switch r.Action {
	case DeadLetter:
		if r.StatusCode == 404 && (kind == events.SyncSubscriberDelete || kind == events.SyncTopicDelete || kind == events.SyncTopicRemove) {
			// Already gone, which is what was asked; the Reason keeps Novu's words.
			r.Action, r.Status, r.KeySpent = Deliver, StatusAlreadyDone, false
		}
		return r
	case Deliver:
	default:
		return r
	}
	if kind != events.SyncTopicAdd && kind != events.SyncTopicRemove {
		return r
	}
	var resp SubscriptionsResponse
	if err := json.Unmarshal(a.Body, &resp); err != nil || resp.Data == nil {
		rr := retryResult(a, now, reasonf(a.StatusCode, "undecodable subscriptions response"))
		rr.Response = a.Body
		return rr
	}
	var notYet, failed []string
	for _, e := range resp.Errors {
		switch {
		case e.Code == CodeSubscriberNotFound && kind == events.SyncTopicAdd:
			notYet = append(notYet, e.SubscriberID)
		case kind == events.SyncTopicRemove && (e.Code == CodeSubscriberNotFound || e.Code == CodeSubscriptionNotFound):
			// already not subscribed: what was asked
		default:
			failed = append(failed, e.SubscriberID+": "+e.Code)
		}
	}
	switch {
	case len(failed) > 0:
		r.Action, r.Reason = DeadLetter, reasonf(a.StatusCode, strings.Join(failed, "; "))
	case len(notYet) > 0:
		r.Action = Retry
		r.Reason = reasonf(a.StatusCode, "Novu has no subscriber "+strings.Join(notYet, ", ")+" yet: its upsert must come first")
	}
	return r
}
