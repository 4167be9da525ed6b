package outcome

import (
	"strconv"
	"strings"
	"time"
)

// Action is what the transport does with a message after Novu's answer.
type Action int

const (
	// Deliver acks the message: Novu accepted the trigger.
	Deliver Action = iota + 1
	// Retry keeps the message: NAK it with a delay ([Result.RetryAfter] or a backoff).
	Retry
	// DeadLetter gives the message up: publish it to the DLQ with [Result.Reason], then ack.
	DeadLetter
	// Outage keeps the message and opens the breaker: the key or the plan is
	// wrong (401, 402, 403), not the message, so it never dead-letters.
	Outage
)

// String names the action, for logs and span attributes.
func (a Action) String() string {
	switch a {
	case Deliver:
		return "deliver"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	case Outage:
		return "outage"
	}
	return "unknown"
}

// TransportError is the kind of failure to get any answer from Novu.
type TransportError int

const (
	// NoTransportError means Novu answered; see the status code.
	NoTransportError TransportError = iota
	// Timeout means no answer within the per-request timeout.
	Timeout
	// Connection means the connection failed (refused, reset, DNS, TLS, EOF).
	Connection
	// Canceled means the caller gave up (shutdown) before the answer.
	Canceled
)

// String names the transport error kind.
func (e TransportError) String() string {
	switch e {
	case NoTransportError:
		return "none"
	case Timeout:
		return "timeout"
	case Connection:
		return "connection"
	case Canceled:
		return "canceled"
	}
	return "unknown"
}

// Header holds the response headers that decide an outcome. Values are raw.
type Header struct {
	// RetryAfter is Retry-After: seconds or an HTTP date.
	RetryAfter string
	// RateLimitRemaining is RateLimit-Remaining: tokens left in Novu's bucket.
	RateLimitRemaining string
	// RateLimitReset is RateLimit-Reset: seconds until a request of the same cost is refilled.
	RateLimitReset string
	// IdempotencyReplay is Idempotency-Replay: "true" when Novu replayed a cached answer.
	IdempotencyReplay string
}

// Answer is what one call to Novu produced.
type Answer struct {
	// StatusCode is the HTTP status, 0 when Err is set.
	StatusCode int
	// Header holds the headers that matter.
	Header Header
	// Body is the response body (possibly cut at a size limit).
	Body []byte
	// Err is the kind of transport failure, [NoTransportError] when Novu answered.
	Err TransportError
	// ErrDetail is a one-line description of the transport failure, without secrets.
	ErrDetail string
}

// Result is the verdict for one trigger.
type Result struct {
	// Action is what to do with the message.
	Action Action
	// StatusCode is the HTTP status, 0 for a transport error.
	StatusCode int
	// Status is Novu's trigger status ("processed", "trigger_not_active"...)
	// when Novu answered 2xx, else "".
	Status string
	// Reason is one line saying why, e.g. "novu 422: workflow_not_found".
	Reason string
	// RetryAfter is the delay Novu asked for (Retry-After), 0 when it asked
	// none and the transport should back off on its own.
	RetryAfter time.Duration
	// KeySpent reports an error replayed from Novu's idempotency cache
	// (Idempotency-Replay: true): retrying with the same Idempotency-Key would
	// get the same cached error, so the next attempt derives a fresh key and
	// relies on the transactionId for dedupe.
	KeySpent bool
	// UnknownStatus reports a 2xx whose status this version does not know; the
	// message is dead-lettered (see [Classify]) and the transport should warn.
	UnknownStatus bool
	// Hint says what to fix, for an [Outage] (the key, the plan, the URL).
	Hint string
	// Transport is the transport failure kind, if any.
	Transport TransportError
	// Response is Novu's answer about this trigger, for the dead letter: the
	// body of a single call or of a failed bulk call, or the item of a bulk answer.
	Response []byte
}

// Trigger statuses Novu returns in a 2xx body (TriggerEventResponseDto.status).
const (
	StatusProcessed                    = "processed"
	StatusError                        = "error"
	StatusTriggerNotActive             = "trigger_not_active"
	StatusNoWorkflowActiveStepsDefined = "no_workflow_active_steps_defined"
	StatusNoWorkflowStepsDefined       = "no_workflow_steps_defined"
	StatusNoTenantFound                = "no_tenant_found"
	StatusInvalidRecipients            = "invalid_recipients"
)

// permanentStatuses are 2xx statuses that mean "accepted, and will never run":
// sending the same trigger again gets the same answer.
var permanentStatuses = map[string]bool{
	StatusError:                        true,
	StatusTriggerNotActive:             true,
	StatusNoWorkflowActiveStepsDefined: true,
	StatusNoWorkflowStepsDefined:       true,
	StatusNoTenantFound:                true,
	StatusInvalidRecipients:            true,
}

// maxReasonLen bounds [Result.Reason].
const maxReasonLen = 300

// Classify decides what to do after one single-trigger call. now is used to
// read a Retry-After given as an HTTP date.
//
//   - 2xx with status processed: [Deliver].
//   - 2xx with status error, trigger_not_active, no_workflow_active_steps_defined,
//     no_workflow_steps_defined, no_tenant_found or invalid_recipients: [DeadLetter].
//   - 2xx with a status this version does not know: [DeadLetter] with
//     [Result.UnknownStatus]. Every status Novu ever added besides processed
//     means "accepted, will not run"; a dead letter keeps the trigger for a
//     human to look at and replay, and a replay of a trigger that did run is
//     dropped by Novu's transactionId dedupe, whereas an ack would lose it.
//   - 2xx whose body cannot be decoded: [Retry] (the transactionId dedupes the resend).
//   - 401, 402, 403: [Outage], with a [Result.Hint].
//   - 3xx: [Outage]: NOVU_API_URL redirects, which is configuration, not the message.
//   - 408, 409, 429, 5xx, other codes below 200 or above 599, timeouts,
//     connection errors: [Retry], with Retry-After when present.
//   - Any other 4xx (400, 404, 413, 422...): [DeadLetter].
func Classify(a Answer, now time.Time) Result {
	r := classifyCall(a, now, hintForbiddenTrigger)
	if r.Action == Deliver && a.Err == NoTransportError {
		if resp, err := DecodeTrigger(a.Body); err != nil {
			r = retryResult(a, now, reasonf(a.StatusCode, "undecodable response: "+err.Error()))
		} else {
			r = itemResult(a.StatusCode, resp)
		}
	}
	r = staleReplay(r, a.Header)
	r.Response = a.Body
	return r
}

// staleReplay turns a refusal that Novu replayed from its Idempotency-Key
// cache (Idempotency-Replay: true) into a retry with a fresh key: the cached
// answer may predate a fix, such as the workflow created since a dead letter
// is replayed, and only a new key gets a new answer. A refusal that is not a
// replay is dead-lettered as usual.
func staleReplay(r Result, h Header) Result {
	if r.Action != DeadLetter || !replayed(h) {
		return r
	}
	r.Action = Retry
	r.KeySpent = true
	r.Reason += " (replayed from Novu's Idempotency-Key cache; retrying with a fresh key)"
	return r
}

// ClassifyBulk decides what to do with each event of one bulk call, whose
// events carried txIDs in request order. A call that failed as a whole (any
// answer but a decodable 2xx) classifies every item the same way; otherwise
// each item gets the verdict of its own result, matched by position (Novu
// answers in request order) and checked by transactionId. call is the verdict
// for the call itself, for the breaker and the rate limiter.
func ClassifyBulk(a Answer, txIDs []string, now time.Time) (call Result, items []Result) {
	call = staleReplay(classifyCall(a, now, hintForbiddenTrigger), a.Header)
	call.Response = a.Body
	items = make([]Result, len(txIDs))
	if call.Action != Deliver || a.Err != NoTransportError {
		for i := range items {
			items[i] = call
		}
		return call, items
	}
	resps, err := DecodeBulk(a.Body)
	if err == nil && len(resps) != len(txIDs) {
		err = errCount(len(resps), len(txIDs))
	}
	if err != nil {
		call = retryResult(a, now, reasonf(a.StatusCode, "undecodable bulk response: "+err.Error()))
		call.Response = a.Body
		for i := range items {
			items[i] = call
		}
		return call, items
	}
	for i, resp := range resps {
		if resp.TransactionID != "" && resp.TransactionID != txIDs[i] {
			items[i] = retryResult(a, now, reasonf(a.StatusCode, "bulk result "+strconv.Itoa(i)+" is for another transactionId"))
			continue
		}
		items[i] = staleReplay(itemResult(a.StatusCode, resp), a.Header)
		if items[i].KeySpent {
			call.KeySpent = true
		}
		items[i].Response = resp.Raw
	}
	return call, items
}

// Hints of a 403 [Outage], by the permission the call needs.
const (
	hintForbiddenTrigger = "Novu denied NOVU_SECRET_KEY (403): the key lacks permission to trigger events (event:write)"
	hintForbiddenSync    = "Novu denied NOVU_SECRET_KEY (403): the key lacks permission to write subscribers or topics (subscriber:write, topic:write)"
)

// classifyCall classifies the HTTP outcome of a call; a 2xx is [Deliver]
// pending the decoding of the body. forbidden is the hint of a 403: what
// the key lacks for this call.
func classifyCall(a Answer, now time.Time, forbidden string) Result {
	switch a.Err {
	case NoTransportError:
	case Canceled:
		return Result{Action: Retry, Transport: Canceled, Reason: "novu call canceled: " + a.ErrDetail}
	default:
		return Result{Action: Retry, Transport: a.Err, Reason: cut("novu " + a.Err.String() + ": " + a.ErrDetail)}
	}
	code := a.StatusCode
	switch {
	case code >= 200 && code <= 299:
		return Result{Action: Deliver, StatusCode: code}
	case code == 401:
		return outage(a, "Novu rejected NOVU_SECRET_KEY (401): check the key, and that NOVU_API_URL is your region (EU accounts use https://eu.api.novu.co)")
	case code == 402:
		return outage(a, "Novu refused for payment (402): the plan's monthly event quota is used up; upgrade the plan or wait for the quota reset")
	case code == 403:
		return outage(a, forbidden)
	case code >= 300 && code <= 399:
		return outage(a, "Novu answered a redirect ("+strconv.Itoa(code)+"): set NOVU_API_URL to the final URL, e.g. https://api.novu.co")
	case code == 408, code == 409, code == 429, code >= 500, code < 200:
		return retryResult(a, now, reasonf(code, errorMessage(a.Body)))
	default:
		return Result{
			Action:     DeadLetter,
			StatusCode: code,
			Reason:     reasonf(code, errorMessage(a.Body)),
			KeySpent:   replayed(a.Header),
		}
	}
}

func outage(a Answer, hint string) Result {
	return Result{
		Action:     Outage,
		StatusCode: a.StatusCode,
		Reason:     reasonf(a.StatusCode, errorMessage(a.Body)),
		Hint:       hint,
		KeySpent:   replayed(a.Header),
	}
}

func retryResult(a Answer, now time.Time, reason string) Result {
	r := Result{Action: Retry, StatusCode: a.StatusCode, Reason: reason, KeySpent: replayed(a.Header) && a.StatusCode/100 != 2}
	if d, ok := ParseRetryAfter(a.Header.RetryAfter, now); ok {
		r.RetryAfter = d
	}
	return r
}

// itemResult classifies one decoded 2xx trigger result.
func itemResult(code int, resp TriggerResponse) Result {
	r := Result{StatusCode: code, Status: resp.Status}
	switch {
	case resp.Status == StatusProcessed:
		r.Action = Deliver
	case permanentStatuses[resp.Status]:
		r.Action = DeadLetter
		r.Reason = reasonf(code, statusReason(resp))
	default:
		r.Action = DeadLetter
		r.UnknownStatus = true
		r.Reason = reasonf(code, "unknown status "+strconv.Quote(resp.Status))
	}
	return r
}

func statusReason(resp TriggerResponse) string {
	if len(resp.Error) > 0 {
		return resp.Status + ": " + strings.Join(resp.Error, "; ")
	}
	return resp.Status
}

func replayed(h Header) bool {
	return strings.EqualFold(strings.TrimSpace(h.IdempotencyReplay), "true")
}

// reasonf formats "novu <code>: <detail>" on one line, bounded.
func reasonf(code int, detail string) string {
	s := "novu " + strconv.Itoa(code)
	if detail != "" {
		s += ": " + detail
	}
	return cut(s)
}

// cut makes s one line of at most maxReasonLen bytes.
func cut(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxReasonLen {
		return s
	}
	for i := maxReasonLen; i > 0; i-- {
		if s[i]&0xC0 != 0x80 { // not a UTF-8 continuation byte
			return s[:i] + "…"
		}
	}
	return ""
}

// StatusLabel is the status label of the sink_triggers_total metric: the HTTP
// status code, or "error" when Novu did not answer.
func (r Result) StatusLabel() string {
	if r.StatusCode == 0 {
		return "error"
	}
	return strconv.Itoa(r.StatusCode)
}

// BreakerVerdict is how a result counts for the circuit breaker.
type BreakerVerdict int

const (
	// BreakerSuccess resets the consecutive failures: Novu answered sensibly.
	BreakerSuccess BreakerVerdict = iota + 1
	// BreakerFailure counts towards opening the breaker: no answer in time,
	// no connection, 408. It says Novu is unreachable, whatever the message.
	BreakerFailure
	// BreakerMessageFailure counts towards opening the breaker once per
	// message in a run of failures: a 5xx may be Novu's outage or one
	// message Novu cannot handle, and only 5xx from many messages is an outage.
	BreakerMessageFailure
	// BreakerTrip opens the breaker at once: the key or plan is wrong.
	BreakerTrip
	// BreakerIgnore neither counts nor resets.
	BreakerIgnore
)

// Breaker says how r counts for the circuit breaker. Delivered and permanent
// results are successes (Novu is up and answering; a 422 is the message's
// fault). Timeouts, connection errors and 408 are failures; 5xx are failures
// of the message that got them ([BreakerMessageFailure]). Outages
// (401, 402, 403, redirects) trip the breaker at once. 429 and 409 are
// ignored: the rate limiter already pauses every call for Retry-After on a 429,
// and a 409 means an earlier attempt of the same key is still running, so
// neither says Novu is down. A canceled call says nothing about Novu.
func (r Result) Breaker() BreakerVerdict {
	switch r.Action {
	case Deliver, DeadLetter:
		return BreakerSuccess
	case Outage:
		return BreakerTrip
	}
	switch {
	case r.Transport == Canceled:
		return BreakerIgnore
	case r.StatusCode == 429, r.StatusCode == 409:
		return BreakerIgnore
	case r.StatusCode/100 == 2:
		// An undecodable 2xx, or a stale replayed status: Novu answered.
		return BreakerSuccess
	case r.KeySpent && r.StatusCode/100 == 4:
		// A refusal replayed from the Idempotency-Key cache: Novu is up.
		return BreakerSuccess
	case r.StatusCode >= 500:
		return BreakerMessageFailure
	}
	return BreakerFailure
}

// BackPressure reports a retry that Novu asked for rather than a failure of
// the message: a 429, or any retried answer carrying Retry-After (a 409 for
// a key still in progress, a 503 naming when to come back). Like an
// [Outage], it must never use up the message's deliveries.
func (r Result) BackPressure() bool {
	return r.Action == Retry && (r.StatusCode == 429 || r.RetryAfter > 0)
}
