package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go/jetstream"
)

// CheckRules parses a rules document and composes it over the built-in
// rules exactly as the router composes a rules file or KV value, returning
// the rules it would put in force, or the router's error (wrapping
// [route.ErrInvalidRules]).
func CheckRules(source string, data []byte) (*route.Rules, error) {
	layer, err := route.Parse(source, data)
	if err != nil {
		return nil, err
	}
	return route.Compose(route.Defaults(), layer)
}

// Routed is one line of `routes test`: a command the router would publish,
// or why it would publish none.
type Routed struct {
	WorkflowID    string            `json:"workflowId,omitempty"`
	To            *events.Recipient `json:"to,omitempty"`
	TransactionID string            `json:"transactionId,omitempty"`
	// Sync is a sync command the router would publish on novu.sync.<kind>.
	Sync *events.SyncCommand `json:"sync,omitempty"`
	// DeadLetter is the reason the router would dead-letter the event.
	DeadLetter string `json:"deadLetter,omitempty"`
	// Skipped is the reason the router would skip the event (acked,
	// counted): no rule routes it and it has nothing to sync.
	Skipped string `json:"skipped,omitempty"`
}

// TestRoute runs the router's pure code on one event body: parse, then
// [route.Plan], as the router does. It returns one Routed per trigger
// command, then one per sync command. svixID seeds the transactionIds and
// sync ids as the message's Svix-Id header would.
func TestRoute(rules *route.Rules, body []byte, svixID string, opts route.BuildOptions) []Routed {
	ev, err := events.ParseEvent(body)
	if err != nil {
		return []Routed{{DeadLetter: err.Error()}}
	}
	cmds, syncs, err := route.Plan(rules, ev, route.Source{SvixID: svixID}, opts)
	if errors.Is(err, route.ErrNoRoute) {
		return []Routed{{Skipped: err.Error()}}
	}
	if err != nil {
		return []Routed{{DeadLetter: err.Error()}}
	}
	out := make([]Routed, 0, len(cmds)+len(syncs))
	for _, c := range cmds {
		out = append(out, Routed{WorkflowID: c.WorkflowID, To: &c.To, TransactionID: c.TransactionID})
	}
	for _, c := range syncs {
		out = append(out, Routed{Sync: &c})
	}
	return out
}

// ErrNoRules reports a bucket without a rules key.
var ErrNoRules = errors.New("no rules stored")

// StoredRules is the rules document in a KV bucket.
type StoredRules struct {
	Bucket   string `json:"bucket"`
	Revision uint64 `json:"revision"`
	Value    []byte `json:"-"`
	// InForce describes the rules the router composes from it, or Invalid
	// why it rejects them (and keeps its last good rules).
	InForce string `json:"in_force,omitempty"`
	Invalid string `json:"invalid,omitempty"`
}

// GetRules reads the rules key of bucket.
func GetRules(ctx context.Context, js jetstream.JetStream, bucket string) (StoredRules, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return StoredRules{}, fmt.Errorf("kv %s: %w", bucket, err)
	}
	e, err := kv.Get(ctx, events.RoutesKVKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return StoredRules{Bucket: bucket}, fmt.Errorf("%w in kv %s/%s: the router uses its built-in rules and ROUTES_FILE", ErrNoRules, bucket, events.RoutesKVKey)
	}
	if err != nil {
		return StoredRules{}, fmt.Errorf("kv %s/%s: %w", bucket, events.RoutesKVKey, err)
	}
	s := StoredRules{Bucket: bucket, Revision: e.Revision(), Value: e.Value()}
	if rules, err := CheckRules(fmt.Sprintf("kv %s/%s rev %d", bucket, events.RoutesKVKey, e.Revision()), e.Value()); err != nil {
		s.Invalid = err.Error()
	} else {
		s.InForce = rules.String()
	}
	return s, nil
}

// PutRules checks data with [CheckRules] and only then stores it under the
// rules key of bucket, returning the new revision; an invalid document is
// never stored.
func PutRules(ctx context.Context, js jetstream.JetStream, bucket, source string, data []byte) (uint64, *route.Rules, error) {
	rules, err := CheckRules(source, data)
	if err != nil {
		return 0, nil, err
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return 0, nil, fmt.Errorf("kv %s: %w (clerknovu provision creates it when ROUTES_KV_BUCKET is set)", bucket, err)
	}
	rev, err := kv.Put(ctx, events.RoutesKVKey, data)
	if err != nil {
		return 0, nil, fmt.Errorf("put kv %s/%s: %w", bucket, events.RoutesKVKey, err)
	}
	return rev, rules, nil
}
