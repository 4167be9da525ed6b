package novufake

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Paths of the subscriber and topic endpoints the fake serves.
const (
	SubscribersPath = "/v2/subscribers"
	TopicsPath      = "/v2/topics"
)

// Endpoint names of the subscriber and topic calls, as in [Call.Endpoint] and [SyncCall.Endpoint].
const (
	EndpointUpsertSubscriber    = "subscriber.upsert"
	EndpointDeleteSubscriber    = "subscriber.delete"
	EndpointAddSubscriptions    = "topic.add"
	EndpointRemoveSubscriptions = "topic.remove"
	EndpointDeleteTopic         = "topic.delete"
)

// MaxSubscriptionIDs is the most subscriber ids Novu takes in one subscription call.
const MaxSubscriptionIDs = 100

// maxSyncBody is the default JSON body limit of the /v2 routes (body-parser's 100 KB).
const maxSyncBody = 100 << 10

// Subscriber is a subscriber as the fake stores it.
type Subscriber struct {
	SubscriberID string `json:"subscriberId"`
	// Fields holds every profile field ever sent (firstName, email...);
	// a field sent as null is held as nil.
	Fields map[string]any `json:"-"`
	// Data is the subscriber's data, replaced by every upsert ({} when the
	// upsert left it out, as Novu does).
	Data json.RawMessage `json:"data"`
	// Upserts counts the upserts of this subscriber.
	Upserts int `json:"-"`
}

// Field returns the string value of profile field name ("" when absent or null).
func (s Subscriber) Field(name string) string {
	v, _ := s.Fields[name].(string)
	return v
}

// SyncCall is one subscriber or topic call the fake received.
type SyncCall struct {
	// Seq is the call's sequence number among the sync calls, from 1.
	Seq int64
	// Endpoint is one of the Endpoint*Subscriber*/Topic* names.
	Endpoint string
	// Key is the subscriber id or topic key of the path ("" for an upsert).
	Key string
	// Body is the request body.
	Body json.RawMessage
	// StatusCode is what the fake answered (0 when dropped).
	StatusCode int
	// Received is when the call arrived.
	Received time.Time
	// Dropped reports a call that was applied but whose answer was never
	// sent ([Response.Drop]).
	Dropped bool
}

// syncState is the fake's Novu environment.
type syncState struct {
	subscribers map[string]*Subscriber
	topics      map[string][]string // key -> subscriber ids, in subscription order
	calls       []SyncCall
}

// Subscriber returns the stored subscriber id.
func (f *Fake) Subscriber(id string) (Subscriber, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sync.subscribers[id]
	if !ok {
		return Subscriber{}, false
	}
	c := *s
	c.Fields = maps.Clone(s.Fields)
	return c, true
}

// SubscriberIDs returns the ids of every stored subscriber, sorted.
func (f *Fake) SubscriberIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.sync.subscribers))
	for id := range f.sync.subscribers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Topic returns the subscriber ids subscribed to topic key, sorted, and
// whether the topic exists.
func (f *Fake) Topic(key string) ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids, ok := f.sync.topics[key]
	out := slices.Clone(ids)
	slices.Sort(out)
	return out, ok
}

// SyncCalls returns every subscriber and topic call, in arrival order.
func (f *Fake) SyncCalls() []SyncCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sync.calls)
}

// PutSubscriber stores a subscriber directly, as if created in Novu by
// another client.
func (f *Fake) PutSubscriber(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sync.subscribers[id]; !ok {
		f.sync.subscribers[id] = &Subscriber{SubscriberID: id, Fields: map[string]any{}, Data: json.RawMessage(`{}`)}
	}
}

// serveSync serves the /v2 subscriber and topic endpoints.
func (f *Fake) serveSync(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	endpoint, key, ok := syncEndpoint(r.Method, r.URL)
	if !ok {
		writeError(w, r, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, nil)
		return
	}
	seq := f.syncCalls.Add(1)
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	tooLarge, err := readBody(r, buf, maxSyncBody)
	if err != nil {
		return
	}
	body := bytes.Clone(buf.Bytes()) // kept in the SyncCall
	f.mu.Lock()
	apiKey, hook, latency := f.key, f.hook, f.latency
	f.mu.Unlock()

	ans := answer{code: http.StatusOK, header: http.Header{}}
	ans.guard(r, apiKey, tooLarge, len(body) > 0)
	refused := ans.code != http.StatusOK
	if !refused && hook != nil {
		// A scripted refusal answers instead of the call; a scripted success
		// (headers, a delay) still runs it.
		if script := hook(Call{Seq: seq, Endpoint: endpoint, Header: r.Header}); script != nil {
			ans.apply(script)
			refused = script.StatusCode != 0 && script.StatusCode/100 != 2
		}
	}
	if refused {
		if ans.body == nil {
			ans.body = errorBody(ans.code, messageOr(ans.message, ans.code), r.URL.Path)
		}
	} else {
		f.mu.Lock()
		ans.code, ans.body = f.sync.apply(endpoint, key, body, r.URL.Path)
		f.mu.Unlock()
	}
	call := SyncCall{Seq: seq, Endpoint: endpoint, Key: key, Body: body, StatusCode: ans.code, Received: received, Dropped: ans.drop}
	if ans.drop {
		call.StatusCode = 0
	}
	f.mu.Lock()
	if f.maxRecords == 0 || len(f.sync.calls) < f.maxRecords {
		f.sync.calls = append(f.sync.calls, call)
	}
	f.mu.Unlock()
	ans.send(w, r, latency)
}

// syncEndpoint names the call of method on u, with the subscriber id or
// topic key of its path.
func syncEndpoint(method string, u *url.URL) (endpoint, key string, ok bool) {
	path := u.EscapedPath()
	unescape := func(s string) (string, bool) {
		v, err := url.PathUnescape(s)
		return v, err == nil && v != "" && !strings.Contains(s, "/")
	}
	switch {
	case path == SubscribersPath && method == http.MethodPost:
		return EndpointUpsertSubscriber, "", true
	case strings.HasPrefix(path, SubscribersPath+"/") && method == http.MethodDelete:
		key, ok = unescape(strings.TrimPrefix(path, SubscribersPath+"/"))
		return EndpointDeleteSubscriber, key, ok
	case strings.HasPrefix(path, TopicsPath+"/"):
		rest := strings.TrimPrefix(path, TopicsPath+"/")
		if k, ok := strings.CutSuffix(rest, "/subscriptions"); ok {
			key, ok = unescape(k)
			switch method {
			case http.MethodPost:
				return EndpointAddSubscriptions, key, ok
			case http.MethodDelete:
				return EndpointRemoveSubscriptions, key, ok
			}
			return "", "", false
		}
		if method == http.MethodDelete {
			key, ok = unescape(rest)
			return EndpointDeleteTopic, key, ok
		}
	}
	return "", "", false
}

// profileFields are the SubscriberPayload fields besides subscriberId and data.
var profileFields = []string{"firstName", "lastName", "email", "phone", "avatar", "locale", "timezone"}

// apply runs one call against the state and returns Novu's answer.
func (st *syncState) apply(endpoint, key string, body []byte, path string) (int, []byte) {
	switch endpoint {
	case EndpointUpsertSubscriber:
		return st.upsert(body, path)
	case EndpointDeleteSubscriber:
		if _, ok := st.subscribers[key]; !ok {
			return http.StatusNotFound, errorBody(http.StatusNotFound, "Subscriber was not found", path)
		}
		delete(st.subscribers, key)
		for k, ids := range st.topics { // Novu removes its subscriptions in the same transaction
			st.topics[k] = slices.DeleteFunc(ids, func(id string) bool { return id == key })
		}
		return http.StatusOK, []byte(`{"data":{"acknowledged":true,"status":"deleted"}}`)
	case EndpointDeleteTopic:
		if _, ok := st.topics[key]; !ok {
			return http.StatusNotFound, errorBody(http.StatusNotFound, "Topic with key "+key+" not found", path)
		}
		delete(st.topics, key)
		return http.StatusOK, []byte(`{"data":{"acknowledged":true}}`)
	}
	return st.subscriptions(endpoint, key, body, path)
}

func (st *syncState) upsert(body []byte, path string) (int, []byte) {
	var w map[string]json.RawMessage
	if json.Unmarshal(body, &w) != nil {
		return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Validation Error", path)
	}
	var id string
	if json.Unmarshal(w["subscriberId"], &id) != nil || strings.TrimSpace(id) == "" {
		return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Validation Error: subscriberId should not be empty", path)
	}
	id = strings.TrimSpace(id)
	fields := map[string]any{}
	for _, name := range profileFields {
		raw, ok := w[name]
		if !ok {
			continue
		}
		var v *string
		if json.Unmarshal(raw, &v) != nil {
			return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Validation Error: "+name+" must be a string", path)
		}
		if v == nil {
			fields[name] = nil
			continue
		}
		if name == "email" && !strings.Contains(*v, "@") {
			return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Validation Error: email must be an email", path)
		}
		fields[name] = *v
	}
	s, ok := st.subscribers[id]
	if !ok {
		s = &Subscriber{SubscriberID: id, Fields: map[string]any{}}
		st.subscribers[id] = s
	}
	maps.Copy(s.Fields, fields)
	s.Data = json.RawMessage(`{}`) // the v2 handler passes body.data || {}
	if d := bytes.TrimSpace(w["data"]); len(d) > 0 && d[0] == '{' {
		s.Data = slices.Clone(d)
	}
	s.Upserts++
	out, _ := json.Marshal(map[string]any{"data": s.response()})
	return http.StatusCreated, out
}

// response is the subscriber's SubscriberResponseDto.
func (s *Subscriber) response() map[string]any {
	r := map[string]any{"_id": "fake_" + s.SubscriberID, "subscriberId": s.SubscriberID, "data": s.Data,
		"deleted": false, "_organizationId": "fake_org", "_environmentId": "fake_env",
		"createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"}
	maps.Copy(r, s.Fields)
	return r
}

// subscriptions adds or removes subscriber ids to or from topic key.
func (st *syncState) subscriptions(endpoint, key string, body []byte, path string) (int, []byte) {
	var w struct {
		SubscriberIDs []string          `json:"subscriberIds"`
		Subscriptions []json.RawMessage `json:"subscriptions"`
	}
	if json.Unmarshal(body, &w) != nil {
		return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Validation Error", path)
	}
	ids := w.SubscriberIDs
	if w.Subscriptions != nil { // the newer form wins
		ids = nil
		for _, raw := range w.Subscriptions {
			var id string
			if json.Unmarshal(raw, &id) != nil {
				var o struct {
					SubscriberID string `json:"subscriberId"`
				}
				_ = json.Unmarshal(raw, &o)
				id = o.SubscriberID
			}
			ids = append(ids, id)
		}
	}
	verb := "subscribe"
	if endpoint == EndpointRemoveSubscriptions {
		verb = "unsubscribe"
	}
	switch {
	case len(ids) == 0:
		return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Validation Error: subscriberIds should not be empty", path)
	case len(ids) > MaxSubscriptionIDs:
		return http.StatusUnprocessableEntity, errorBody(http.StatusUnprocessableEntity, "Cannot "+verb+" more than 100 subscribers at once", path)
	case !validTopicKey(key):
		return http.StatusBadRequest, errorBody(http.StatusBadRequest, "Invalid topic key", path)
	}
	members, exists := st.topics[key]
	if endpoint == EndpointRemoveSubscriptions && !exists {
		return http.StatusNotFound, errorBody(http.StatusNotFound, "Topic with key "+key+" not found", path)
	}
	type itemErr struct {
		SubscriberID string `json:"subscriberId"`
		Code         string `json:"code"`
		Message      string `json:"message"`
	}
	var (
		data []map[string]any
		errs []itemErr
	)
	for _, id := range ids {
		_, known := st.subscribers[id]
		in := slices.Contains(members, id)
		switch {
		case !known:
			errs = append(errs, itemErr{id, "SUBSCRIBER_NOT_FOUND", "Subscriber with id " + id + " not found"})
		case endpoint == EndpointAddSubscriptions:
			if !in {
				members = append(members, id)
			}
			data = append(data, subscription(key, id))
		case !in:
			errs = append(errs, itemErr{id, "SUBSCRIPTION_NOT_FOUND", "Subscription for subscriber " + id + " not found"})
		default:
			members = slices.DeleteFunc(members, func(m string) bool { return m == id })
			data = append(data, subscription(key, id))
		}
	}
	if endpoint == EndpointAddSubscriptions || exists {
		if members == nil {
			members = []string{}
		}
		st.topics[key] = members // the first subscription creates the topic
	}
	resp := map[string]any{
		"data": data,
		"meta": map[string]int{"totalCount": len(ids), "successful": len(data), "failed": len(errs)},
	}
	if data == nil {
		resp["data"] = []any{}
	}
	if len(errs) > 0 || endpoint == EndpointAddSubscriptions {
		resp["errors"] = errs // a removal without failures leaves errors out, as Novu does
		if errs == nil {
			resp["errors"] = []any{}
		}
	}
	out, _ := json.Marshal(resp)
	code := http.StatusOK
	if endpoint == EndpointAddSubscriptions {
		code = http.StatusCreated
	}
	return code, out
}

func subscription(key, id string) map[string]any {
	return map[string]any{
		"_id":        "fake_" + key + "_" + id,
		"identifier": "tk_" + key + ":si_" + id,
		"topic":      map[string]string{"_id": "fake_" + key, "key": key},
		"subscriber": map[string]string{"_id": "fake_" + id, "subscriberId": id},
		"createdAt":  "2026-01-01T00:00:00.000Z",
		"updatedAt":  "2026-01-01T00:00:00.000Z",
	}
}

// validTopicKey is Novu's VALID_ID_REGEX for topic keys, 1 to 100 characters.
func validTopicKey(k string) bool {
	if k == "" || len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':') {
			return strings.Count(k, "@") == 1 && !strings.ContainsAny(k, " /")
		}
	}
	return true
}
