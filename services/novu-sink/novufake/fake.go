package novufake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths the fake serves.
const (
	TriggerPath     = "/v1/events/trigger"
	BulkTriggerPath = "/v1/events/trigger/bulk"
)

// Endpoint names, as in [Trigger.Endpoint] and [Call.Endpoint].
const (
	EndpointTrigger = "trigger"
	EndpointBulk    = "bulk"
)

// MaxBulkEvents is the most events Novu accepts in one bulk call.
const MaxBulkEvents = 100

// BulkCost is what a bulk call costs in the rate-limit bucket; a single trigger costs 1.
const BulkCost = 100

// maxBody is Novu's body limit on /v1/events* (see [WithMaxBody]).
const maxBody = 26 << 20

// Trigger is one trigger the fake received, with what it answered.
type Trigger struct {
	// Endpoint is [EndpointTrigger] or [EndpointBulk].
	Endpoint string
	// Call is the sequence number (from 1) of the HTTP call that carried it.
	Call int64
	// Index is its position in a bulk call (0 for a single trigger).
	Index int
	// Name is the wire field "name": the workflow id.
	Name string
	// To is the raw "to" value.
	To json.RawMessage
	// Payload is the raw "payload" bytes, exactly as sent.
	Payload json.RawMessage
	// TransactionID is the "transactionId" sent ("" when none).
	TransactionID string
	// IdempotencyKey, Traceparent, ContentType and Accept are request headers.
	IdempotencyKey, Traceparent, ContentType, Accept string
	// Received is when the request arrived.
	Received time.Time
	// StatusCode is the HTTP status answered to the call (0 when dropped).
	StatusCode int
	// Status is the trigger status answered for this trigger ("processed",
	// "error"...), "" when the call was refused.
	Status string
	// Replayed reports an answer replayed from the idempotency cache.
	Replayed bool
	// Dropped reports a call that was processed but whose answer was never
	// sent ([Response.Drop]).
	Dropped bool
}

// Accepted reports whether Novu would run this trigger: status processed and not a replay.
func (t Trigger) Accepted() bool { return t.Status == "processed" && !t.Replayed }

// Call is what a [Hook] sees of one HTTP call.
type Call struct {
	// Seq is the call's sequence number, from 1.
	Seq int64
	// Endpoint is [EndpointTrigger] or [EndpointBulk].
	Endpoint string
	// Triggers are the decoded triggers, answer fields unset.
	Triggers []Trigger
	// Header is the request's header (read only).
	Header http.Header
}

// Response is a scripted answer.
type Response struct {
	// StatusCode is the HTTP status; 0 means 201.
	StatusCode int
	// Status is the trigger status of a 2xx answer; "" means "processed".
	Status string
	// Message is the "message" of an error body (default: the status text), or
	// the error of a bulk item whose workflow is scripted to fail.
	Message string
	// Header holds extra response headers (Retry-After, RateLimit-*...).
	Header http.Header
	// Body replaces the generated body when not nil.
	Body []byte
	// Delay holds the answer back (a slow Novu); a client that gives up first gets nothing.
	Delay time.Duration
	// Drop processes the call as accepted, then closes the connection without
	// answering: Novu took the trigger and the client never learns it.
	Drop bool
}

// Hook sees every call after authentication and rate limiting; a non-nil
// result is the answer instead of the default (and of workflow scripts).
type Hook func(Call) *Response

// WorkflowNotFound is Novu's answer to an unknown workflow: 422 workflow_not_found.
func WorkflowNotFound() Response {
	return Response{StatusCode: http.StatusUnprocessableEntity, Message: "workflow_not_found"}
}

// Status is a 201 whose trigger status is s (e.g. "trigger_not_active").
func Status(s string) Response { return Response{StatusCode: http.StatusCreated, Status: s} }

// Unavailable is a 503, with Retry-After when retryAfter > 0.
func Unavailable(retryAfter time.Duration) Response {
	r := Response{StatusCode: http.StatusServiceUnavailable, Message: "Service temporarily unavailable"}
	if retryAfter > 0 {
		r.Header = http.Header{"Retry-After": {seconds(retryAfter)}}
	}
	return r
}

// TooManyRequests is Novu's 429 with Retry-After and an empty bucket.
func TooManyRequests(retryAfter time.Duration) Response {
	return Response{
		StatusCode: http.StatusTooManyRequests,
		Message:    "API rate limit exceeded",
		Header: http.Header{
			"Retry-After":         {seconds(retryAfter)},
			"Ratelimit-Remaining": {"0"},
			"Ratelimit-Reset":     {seconds(retryAfter)},
		},
	}
}

func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// Option configures a [Fake].
type Option func(*Fake)

// WithWorkflow scripts the answer for triggers of workflow name.
func WithWorkflow(name string, r Response) Option {
	return func(f *Fake) { f.workflows[name] = r }
}

// WithHook sets the per-call hook.
func WithHook(h Hook) Option { return func(f *Fake) { f.hook = h } }

// WithLatency delays every answer by d, the sync calls' too.
func WithLatency(d time.Duration) Option { return func(f *Fake) { f.latency = d } }

// WithRateLimit enables a token bucket like Novu's: perSecond tokens refill
// every second up to burst; a single trigger costs 1 and a bulk call
// [BulkCost]. Every answer carries RateLimit-Limit, RateLimit-Remaining,
// RateLimit-Reset and RateLimit-Policy; an empty bucket answers 429 with
// Retry-After (whole seconds, as Novu sends).
func WithRateLimit(perSecond float64, burst int) Option {
	return func(f *Fake) {
		f.bucket = &bucket{rate: perSecond, burst: float64(burst), tokens: float64(burst), last: time.Now()}
	}
}

// WithIdempotency enables Novu's Idempotency-Key behaviour: the first answer
// to a key (errors included) is cached and replayed with
// Idempotency-Replay: true; the same key while the first call runs is a 409
// with Retry-After: 1; the same key with another body is a 422.
func WithIdempotency() Option {
	return func(f *Fake) { f.idem = map[string]*idemEntry{} }
}

// WithMaxBody answers 413 to a request whose body exceeds n bytes, as Novu
// does beyond its 26 MB limit (the default); a small n makes one oversize
// event fail a whole bulk call, as a proxy's lower limit would.
func WithMaxBody(n int) Option { return func(f *Fake) { f.maxBody = n } }

// WithMaxRecords keeps at most n recorded triggers and n recorded sync
// calls (0, the default, keeps all); counts per transactionId and the sync
// state are kept regardless.
func WithMaxRecords(n int) Option { return func(f *Fake) { f.maxRecords = n } }

// Fake is the fake Novu API, an [http.Handler].
type Fake struct {
	calls atomic.Int64
	// syncCalls counts the subscriber and topic calls, apart from [Fake.Calls].
	syncCalls atomic.Int64
	accepted  atomic.Int64

	mu         sync.Mutex
	key        string
	hook       Hook
	workflows  map[string]Response
	latency    time.Duration
	bucket     *bucket
	idem       map[string]*idemEntry
	maxRecords int
	maxBody    int
	triggers   []Trigger
	counts     map[string]int
	bulkSizes  []int
	sync       syncState
}

var _ http.Handler = (*Fake)(nil)

// New returns a fake that accepts "Authorization: ApiKey <apiKey>".
func New(apiKey string, opts ...Option) *Fake {
	f := &Fake{key: apiKey, workflows: map[string]Response{}, counts: map[string]int{}, maxBody: maxBody,
		sync: syncState{subscribers: map[string]*Subscriber{}, topics: map[string][]string{}}}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Server is a [Fake] served by an httptest.Server on a loopback port.
type Server struct {
	*httptest.Server
	*Fake
}

// NewServer starts a fake on a loopback port; Close it when done.
func NewServer(apiKey string, opts ...Option) *Server {
	f := New(apiKey, opts...)
	return &Server{Server: httptest.NewServer(f), Fake: f}
}

// SetAPIKey changes the accepted key (e.g. to end a 401 outage).
func (f *Fake) SetAPIKey(key string) {
	f.mu.Lock()
	f.key = key
	f.mu.Unlock()
}

// SetHook replaces the per-call hook; nil removes it.
func (f *Fake) SetHook(h Hook) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// SetWorkflow scripts the answer for workflow name.
func (f *Fake) SetWorkflow(name string, r Response) {
	f.mu.Lock()
	f.workflows[name] = r
	f.mu.Unlock()
}

// Calls is the number of HTTP calls to the trigger endpoints, refused ones included.
func (f *Fake) Calls() int64 { return f.calls.Load() }

// AcceptedCount is the number of triggers accepted (status processed, not replays).
func (f *Fake) AcceptedCount() int64 { return f.accepted.Load() }

// Triggers returns a copy of every recorded trigger, in arrival order.
func (f *Fake) Triggers() []Trigger {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Trigger(nil), f.triggers...)
}

// Accepted returns the recorded triggers Novu would run.
func (f *Fake) Accepted() []Trigger {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Trigger
	for _, t := range f.triggers {
		if t.Accepted() {
			out = append(out, t)
		}
	}
	return out
}

// ByTransactionID returns the recorded triggers carrying id, in arrival order.
func (f *Fake) ByTransactionID(id string) []Trigger {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Trigger
	for _, t := range f.triggers {
		if t.TransactionID == id {
			out = append(out, t)
		}
	}
	return out
}

// Count is how many times a trigger with transactionId id was accepted.
func (f *Fake) Count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[id]
}

// Duplicates returns the transactionIds accepted more than once, with their counts.
func (f *Fake) Duplicates() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for id, n := range f.counts {
		if n > 1 {
			out[id] = n
		}
	}
	return out
}

// BulkSizes returns the number of events of every bulk call, in arrival order.
func (f *Fake) BulkSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.bulkSizes...)
}

// Reset forgets every recorded trigger, count and cached idempotent answer.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers, f.bulkSizes = nil, nil
	f.counts = map[string]int{}
	if f.idem != nil {
		f.idem = map[string]*idemEntry{}
	}
	f.calls.Store(0)
	f.accepted.Store(0)
	f.sync = syncState{subscribers: map[string]*Subscriber{}, topics: map[string][]string{}}
	f.syncCalls.Store(0)
}

// wireTrigger is a TriggerEventRequestDto as received.
type wireTrigger struct {
	Name          *string         `json:"name"`
	To            json.RawMessage `json:"to"`
	Payload       json.RawMessage `json:"payload"`
	TransactionID string          `json:"transactionId"`
}

type idemEntry struct {
	done     bool
	bodyHash [sha256.Size]byte
	code     int
	header   http.Header
	body     []byte
	statuses []string
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeHTTP serves the trigger endpoints.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v2/") {
		f.serveSync(w, r)
		return
	}
	received := time.Now()
	var endpoint string
	switch r.URL.Path {
	case TriggerPath:
		endpoint = EndpointTrigger
	case BulkTriggerPath:
		endpoint = EndpointBulk
	default:
		writeError(w, r, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, nil)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, r, http.StatusMethodNotAllowed, "Cannot "+r.Method+" "+r.URL.Path, nil)
		return
	}
	seq := f.calls.Add(1)

	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	tooLarge, err := readBody(r, buf, f.maxBody)
	if err != nil {
		return
	}
	if tooLarge {
		writeError(w, r, http.StatusRequestEntityTooLarge, msgTooLarge, nil)
		return
	}
	triggers, bad := decode(endpoint, buf.Bytes())
	for i := range triggers {
		t := &triggers[i]
		t.Endpoint, t.Call, t.Received = endpoint, seq, received
		t.IdempotencyKey = r.Header.Get("Idempotency-Key")
		t.Traceparent = r.Header.Get("Traceparent")
		t.ContentType = r.Header.Get("Content-Type")
		t.Accept = r.Header.Get("Accept")
	}

	f.mu.Lock()
	key, hook, latency := f.key, f.hook, f.latency
	f.mu.Unlock()

	ans := answer{code: http.StatusCreated, header: http.Header{}}
	ans.guard(r, key, false, true)
	if ans.code == http.StatusCreated && bad != "" {
		ans.fail(http.StatusUnprocessableEntity, bad)
	}
	if ans.code == http.StatusCreated && f.bucket != nil {
		cost := 1.0
		if endpoint == EndpointBulk {
			cost = BulkCost
		}
		f.mu.Lock()
		f.bucket.take(received, cost, &ans)
		f.mu.Unlock()
	}

	idemKey := r.Header.Get("Idempotency-Key")
	var entry *idemEntry
	if ans.code == http.StatusCreated && f.idem != nil && idemKey != "" {
		hash := sha256.Sum256(buf.Bytes())
		f.mu.Lock()
		e, seen := f.idem[idemKey]
		switch {
		case !seen:
			entry = &idemEntry{bodyHash: hash}
			f.idem[idemKey] = entry
		case e.bodyHash != hash:
			ans.fail(http.StatusUnprocessableEntity, `Request with key "`+idemKey+`" is being reused for a different body`)
		case !e.done:
			ans.fail(http.StatusConflict, `Request with key "`+idemKey+`" is currently being processed. Please retry after 1 second`)
			ans.header.Set("Retry-After", "1")
		default:
			ans.code, ans.body, ans.replayed = e.code, e.body, true
			ans.header = e.header.Clone()
			ans.statuses = e.statuses
		}
		f.mu.Unlock()
		ans.header.Set("Idempotency-Key", idemKey)
	}

	var script *Response
	if ans.code == http.StatusCreated && !ans.replayed {
		if hook != nil {
			script = hook(Call{Seq: seq, Endpoint: endpoint, Triggers: triggers, Header: r.Header})
		}
		if script != nil {
			ans.apply(script)
		}
		if ans.code/100 == 2 && ans.body == nil {
			f.itemStatuses(endpoint, triggers, script, &ans)
		}
	}
	if !ans.replayed && ans.body == nil {
		ans.body = ans.render(r.URL.Path, endpoint, triggers)
	}
	if ans.replayed {
		ans.header.Set("Idempotency-Replay", "true")
	}
	if entry != nil {
		f.mu.Lock()
		entry.done, entry.code, entry.body, entry.statuses = true, ans.code, ans.body, ans.statuses
		entry.header = ans.header.Clone()
		entry.header.Del("Idempotency-Replay")
		f.mu.Unlock()
	}

	f.record(endpoint, triggers, &ans)
	ans.send(w, r, latency)
}

// msgTooLarge is the message of a 413 (body-parser's).
const msgTooLarge = "request entity too large"

// readBody reads r's body into buf (reset first), up to one byte past
// limit: tooLarge reports a body longer than limit.
func readBody(r *http.Request, buf *bytes.Buffer, limit int) (tooLarge bool, err error) {
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, int64(limit)+1)); err != nil {
		return false, err
	}
	return buf.Len() > limit, nil
}

// guard fails a as Novu does before it looks at the call: 401 unless r
// carries "Authorization: ApiKey <key>" (never when no key is set), 413 for
// a body past the limit (tooLarge), then 415 for a body not sent as JSON
// (needJSON: the call has a body that must be).
func (a *answer) guard(r *http.Request, key string, tooLarge, needJSON bool) {
	switch {
	case r.Header.Get("Authorization") != "ApiKey "+key || key == "":
		a.fail(http.StatusUnauthorized, "Unauthorized")
	case tooLarge:
		a.fail(http.StatusRequestEntityTooLarge, msgTooLarge)
	case needJSON && !isJSON(r.Header.Get("Content-Type")):
		a.fail(http.StatusUnsupportedMediaType, "Unsupported Media Type")
	}
}

// send holds the answer back for latency plus its scripted delay, then
// writes it, or closes the connection without a word for [Response.Drop].
// It gives up when the client does.
func (a *answer) send(w http.ResponseWriter, r *http.Request, latency time.Duration) {
	if d := latency + a.delay; d > 0 {
		if !sleep(r.Context(), d) {
			return
		}
	}
	if a.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	a.write(w)
}

// answer is the answer being built for one call.
type answer struct {
	code     int
	header   http.Header
	message  string
	body     []byte
	statuses []string // per trigger, for a 2xx
	errs     []string // per trigger, for an "error" item
	replayed bool
	drop     bool
	delay    time.Duration
}

// write sends the answer: its headers, a JSON content type, the status and the body.
func (a *answer) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.code)
	_, _ = w.Write(a.body)
}

func (a *answer) fail(code int, msg string) {
	a.code, a.message = code, msg
}

func (a *answer) apply(r *Response) {
	if r.StatusCode != 0 {
		a.code = r.StatusCode
	}
	a.message = r.Message
	for k, v := range r.Header {
		a.header[k] = append([]string(nil), v...)
	}
	if r.Body != nil {
		a.body = r.Body
	}
	a.delay, a.drop = r.Delay, r.Drop
}

// itemStatuses sets the status of each trigger of a 2xx answer from the
// script of the call, then the scripts of the workflows.
func (f *Fake) itemStatuses(endpoint string, triggers []Trigger, script *Response, a *answer) {
	a.statuses = make([]string, len(triggers))
	a.errs = make([]string, len(triggers))
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, t := range triggers {
		st := "processed"
		if script != nil && script.Status != "" {
			st = script.Status
		} else if wf, ok := f.workflows[t.Name]; ok {
			switch {
			case wf.StatusCode == 0 || wf.StatusCode/100 == 2:
				if wf.Status != "" {
					st = wf.Status
				}
			case endpoint == EndpointBulk:
				st = "error"
				a.errs[i] = messageOr(wf.Message, wf.StatusCode)
			default:
				// A single trigger of a failing workflow fails the call.
				a.code, a.message, a.statuses = wf.StatusCode, messageOr(wf.Message, wf.StatusCode), nil
				for k, v := range wf.Header {
					a.header[k] = append([]string(nil), v...)
				}
				if wf.Body != nil {
					a.body = wf.Body
				}
				a.delay += wf.Delay
				return
			}
			a.delay += wf.Delay
		}
		a.statuses[i] = st
	}
}

// render builds the body of an answer.
func (a *answer) render(path, endpoint string, triggers []Trigger) []byte {
	if a.code/100 != 2 {
		return errorBody(a.code, messageOr(a.message, a.code), path)
	}
	b := make([]byte, 0, 16+100*len(triggers))
	b = append(b, `{"data":`...)
	if endpoint == EndpointBulk {
		b = append(b, '[')
	}
	for i, t := range triggers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"acknowledged":true,"status":`...)
		b, _ = appendJSON(b, a.statuses[i])
		if a.errs != nil && a.errs[i] != "" {
			b = append(b, `,"error":[`...)
			b, _ = appendJSON(b, a.errs[i])
			b = append(b, ']')
		}
		b = append(b, `,"transactionId":`...)
		id := t.TransactionID
		if id == "" {
			id = "txn_fake" + strconv.FormatInt(t.Call, 10) + "_" + strconv.Itoa(i)
		}
		b, _ = appendJSON(b, id)
		b = append(b, '}')
	}
	if endpoint == EndpointBulk {
		b = append(b, ']')
	}
	return append(b, '}')
}

func (f *Fake) record(endpoint string, triggers []Trigger, a *answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if endpoint == EndpointBulk {
		f.bulkSizes = append(f.bulkSizes, len(triggers))
	}
	for i := range triggers {
		t := &triggers[i]
		t.StatusCode, t.Replayed, t.Dropped = a.code, a.replayed, a.drop
		if a.drop {
			t.StatusCode = 0
		}
		if a.code/100 == 2 && i < len(a.statuses) {
			t.Status = a.statuses[i]
		}
		if t.Accepted() {
			f.accepted.Add(1)
			f.counts[t.TransactionID]++
		}
		if f.maxRecords == 0 || len(f.triggers) < f.maxRecords {
			f.triggers = append(f.triggers, *t)
		}
	}
}

// decode parses a body into triggers; bad is a validation message for a 422.
func decode(endpoint string, body []byte) (triggers []Trigger, bad string) {
	var list []wireTrigger
	if endpoint == EndpointBulk {
		var w struct {
			Events []wireTrigger `json:"events"`
		}
		if err := json.Unmarshal(body, &w); err != nil {
			return nil, "Validation Error: body is not a bulk trigger"
		}
		switch {
		case len(w.Events) == 0:
			return nil, "events should not be empty"
		case len(w.Events) > MaxBulkEvents:
			return nil, "events must contain no more than 100 elements"
		}
		list = w.Events
	} else {
		var w wireTrigger
		if err := json.Unmarshal(body, &w); err != nil {
			return nil, "Validation Error: body is not a trigger"
		}
		list = []wireTrigger{w}
	}
	triggers = make([]Trigger, len(list))
	for i, w := range list {
		t := &triggers[i]
		t.Index, t.To, t.Payload, t.TransactionID = i, w.To, w.Payload, w.TransactionID
		switch {
		case w.Name == nil || *w.Name == "":
			bad = "Validation Error: name should not be empty"
		case len(w.To) == 0 || string(w.To) == "null":
			bad = "Validation Error: to should not be null or undefined"
		default:
			t.Name = *w.Name
		}
		if len(w.Payload) > 0 && w.Payload[0] != '{' && string(w.Payload) != "null" {
			bad = "Validation Error: payload must be an object"
		}
	}
	return triggers, bad
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

func messageOr(msg string, code int) string {
	if msg != "" {
		return msg
	}
	return http.StatusText(code)
}

// errorBody renders Novu's ErrorDto.
func errorBody(code int, msg, path string) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"statusCode":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"timestamp":"`...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","path":`...)
	b, _ = appendJSON(b, path)
	b = append(b, `,"message":`...)
	b, _ = appendJSON(b, msg)
	if code == http.StatusUnprocessableEntity {
		b = append(b, `,"error":"Unprocessable Entity"`...)
	}
	return append(b, '}')
}

func writeError(w http.ResponseWriter, r *http.Request, code int, msg string, h http.Header) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(errorBody(code, msg, r.URL.Path))
}

func appendJSON(b []byte, s string) ([]byte, error) {
	q, err := json.Marshal(s)
	return append(b, q...), err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// bucket is a token bucket refilled continuously at rate per second.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take charges cost, or fails a with 429; either way it sets the RateLimit-* headers.
func (b *bucket) take(now time.Time, cost float64, a *answer) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.burst, b.tokens+el*b.rate)
		b.last = now
	}
	ok := b.tokens >= cost
	if ok {
		b.tokens -= cost
	}
	wait := 0.0
	if b.tokens < cost && b.rate > 0 {
		wait = math.Ceil((cost - b.tokens) / b.rate)
	}
	costName := "single"
	if cost > 1 {
		costName = "bulk"
	}
	h := a.header
	h.Set("RateLimit-Limit", strconv.FormatInt(int64(b.burst), 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(int64(math.Floor(b.tokens)), 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(int64(wait), 10))
	h.Set("RateLimit-Policy", strconv.FormatInt(int64(b.burst), 10)+`;w=1;burst=`+strconv.FormatInt(int64(b.burst), 10)+
		`;comment="token bucket";category="trigger";cost="`+costName+`";serviceLevel="fake"`)
	if !ok {
		a.fail(http.StatusTooManyRequests, "API rate limit exceeded")
		h.Set("Retry-After", strconv.FormatInt(int64(math.Max(1, wait)), 10))
	}
}
