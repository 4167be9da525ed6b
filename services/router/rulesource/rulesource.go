// Package rulesource holds the routing rules in force and keeps them current:
// the built-in defaults and the rules file at start, then every change of the
// rules key in a NATS KV bucket, applied within moments and without a restart.
// An invalid KV value is rejected with a logged reason and the last good rules
// stay in force; deleting the key returns to the defaults and the file.
package rulesource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the source and result labels of the reloads counter.
const (
	// SourceFile is the rules file (ROUTES_FILE), loaded at start.
	SourceFile = "file"
	// SourceKV is the KV value (ROUTES_KV_BUCKET), watched.
	SourceKV = "kv"
	// ResultOK is a document loaded and in force.
	ResultOK = "ok"
	// ResultInvalid is a document rejected; the last good rules stay.
	ResultInvalid = "invalid"
	// ResultRemoved is the KV key deleted or purged: back to the base rules.
	ResultRemoved = "removed"
)

// NewReloadsCounter returns router_rules_reloads_total{source,result}.
func NewReloadsCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "router_rules_reloads_total",
		Help: "Routing rules documents loaded (source file or kv; result ok, invalid or removed).",
	}, []string{"source", "result"})
}

// Source is the routing rules in force. Current is safe for concurrent use and
// never blocks: the rules are swapped atomically.
type Source struct {
	base    []route.Layer
	log     *slog.Logger
	reloads *prometheus.CounterVec

	cur      atomic.Pointer[route.Rules]
	loaded   atomic.Bool
	rejected atomic.Pointer[string]

	mu    sync.Mutex // serialises Apply and Remove
	kvRev uint64
	// kvInForce is set while a KV value is part of the rules in force.
	kvInForce bool
	// reconcileEvery overrides [reconcileEvery] (tests).
	reconcileEvery time.Duration
	bucket         string
}

// New returns a Source with base (the defaults, then the rules file) in force.
// It fails with [route.ErrInvalidRules] when they do not compose. reloads may
// be nil.
func New(log *slog.Logger, reloads *prometheus.CounterVec, base ...route.Layer) (*Source, error) {
	rules, err := route.Compose(base...)
	if err != nil {
		return nil, err
	}
	if reloads == nil {
		reloads = NewReloadsCounter()
	}
	s := &Source{base: base, log: log, reloads: reloads}
	s.cur.Store(rules)
	return s, nil
}

// Current returns the rules in force.
func (s *Source) Current() *route.Rules { return s.cur.Load() }

// Loaded reports whether the rules are final for now: true once the KV
// bucket's current value has been read (or at once with no KV bucket, see
// [Source.SetLoaded]).
func (s *Source) Loaded() bool { return s.loaded.Load() }

// SetLoaded marks the rules final; for a router that uses no KV bucket.
func (s *Source) SetLoaded() { s.loaded.Store(true) }

// Status describes the rules in force and the last rejected KV value, if any.
func (s *Source) Status() string {
	status := s.Current().String()
	if r := s.rejected.Load(); r != nil {
		status += "; rejected: " + *r
	}
	return status
}

// Apply replaces the KV layer with data, the value at revision rev (0: always
// apply). A revision already seen is ignored. An invalid value is rejected:
// the error says why, and the rules in force do not change.
func (s *Source) Apply(rev uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(rev, data)
}

func (s *Source) applyLocked(rev uint64, data []byte) error {
	if rev != 0 && rev <= s.kvRev {
		return nil
	}
	s.kvRev = rev
	source := s.kvSource(rev)
	layer, err := route.Parse(source, data)
	var rules *route.Rules
	if err == nil {
		rules, err = route.Compose(append(s.base[:len(s.base):len(s.base)], layer)...)
	}
	if err != nil {
		s.reloads.WithLabelValues(SourceKV, ResultInvalid).Inc()
		reason := err.Error()
		s.rejected.Store(&reason)
		s.log.Error("routing rules rejected: the last good rules stay in force", "source", source, "reason", reason, "in_force", s.Current().String())
		return err
	}
	s.rejected.Store(nil)
	s.cur.Store(rules)
	s.kvInForce = true
	s.reloads.WithLabelValues(SourceKV, ResultOK).Inc()
	s.log.Info("routing rules loaded", "source", source, "rules", rules.String())
	return nil
}

// Remove drops the KV layer (the key was deleted or purged at revision rev):
// the defaults and the file are in force again.
func (s *Source) Remove(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(rev)
}

func (s *Source) removeLocked(rev uint64) {
	if rev != 0 && rev <= s.kvRev {
		return
	}
	s.kvRev = rev
	rules, err := route.Compose(s.base...) // composed once already in New
	if err != nil {
		s.log.Error("routing rules: cannot return to the base rules", "err", err)
		return
	}
	s.rejected.Store(nil)
	s.cur.Store(rules)
	s.kvInForce = false
	s.reloads.WithLabelValues(SourceKV, ResultRemoved).Inc()
	s.log.Info("routing rules key removed: back to the base rules", "source", s.kvSource(rev), "rules", rules.String())
}

func (s *Source) kvSource(rev uint64) string {
	return fmt.Sprintf("kv %s/%s rev %d", s.bucket, events.RoutesKVKey, rev)
}

// handle applies one watched entry.
func (s *Source) handle(e jetstream.KeyValueEntry) {
	switch e.Operation() {
	case jetstream.KeyValuePut:
		_ = s.Apply(e.Revision(), e.Value()) // a rejection is logged and counted
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		s.Remove(e.Revision())
	}
}

// Watch reads the current value of [events.RoutesKVKey] in kv, applies it,
// marks the rules loaded, then follows every change until stop is called. A
// watcher that closes (the connection was closed, the bucket recreated) is
// opened again. It fails when the first read does not complete before ctx ends.
func (s *Source) Watch(ctx context.Context, kv jetstream.KeyValue) (stop func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", kv.Bucket(), events.RoutesKVKey, err)
	}
	s.mu.Lock()
	s.bucket = kv.Bucket()
	s.mu.Unlock()
	// The watcher outlives ctx (the start-up context): it stops with stop().
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := s.watch(ctx, wctx, kv)
	if err != nil {
		cancel()
		return nil, err
	}
	s.loaded.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.follow(wctx, kv, w)
	}()
	return func() {
		cancel()
		<-done
	}, nil
}

// watch opens a watcher and applies the values it delivers up to the marker
// that ends the initial values.
func (s *Source) watch(ctx, wctx context.Context, kv jetstream.KeyValue) (jetstream.KeyWatcher, error) {
	w, err := kv.Watch(wctx, events.RoutesKVKey)
	if err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", kv.Bucket(), events.RoutesKVKey, err)
	}
	// A new watcher's initial values are the truth, whatever was seen before:
	// a recreated bucket starts its revisions at 1 again.
	s.mu.Lock()
	s.kvRev = 0
	s.mu.Unlock()
	seen := false
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watch %s/%s: watcher closed", kv.Bucket(), events.RoutesKVKey)
			}
			if e == nil {
				s.mu.Lock()
				stale := !seen && s.kvInForce
				s.mu.Unlock()
				if stale { // the key is gone (bucket recreated empty, or deleted meanwhile)
					s.Remove(0)
				}
				return w, nil
			}
			seen = true
			s.handle(e)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("watch %s/%s: %w", kv.Bucket(), events.RoutesKVKey, ctx.Err())
		}
	}
}

// reconcileEvery is how often the key's current value is compared with the
// rules in force (see [Source.reconcile]).
const reconcileEvery = 10 * time.Second

// reconcile compares the rules in force with the key's current value and
// catches up on what a watcher cannot see: the bucket deleted (its rules go),
// or deleted and created again (its revisions start at 1 again, below the
// last one applied, and the old watcher resumes past them). It changes
// nothing when the watcher applied something meanwhile.
func (s *Source) reconcile(ctx context.Context, kv jetstream.KeyValue) {
	s.mu.Lock()
	before := s.kvRev
	s.mu.Unlock()
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	e, err := kv.Get(gctx, events.RoutesKVKey)
	if errors.Is(err, nats.ErrNoResponders) {
		// A direct get nobody answers: ask JetStream whether the bucket is gone.
		if _, serr := kv.Status(gctx); serr != nil {
			err = serr
		}
	}
	cancel()
	gone := errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
	if err != nil && !gone {
		return // NATS unreachable: the next round tries again
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.kvRev != before: // the watcher moved on: it is the fresher view
	case gone:
		if s.kvInForce {
			s.removeLocked(0)
		}
	case e.Revision() > before:
		_ = s.applyLocked(e.Revision(), e.Value())
	case e.Revision() < before: // recreated bucket
		s.kvRev = 0
		_ = s.applyLocked(e.Revision(), e.Value())
	}
}

// follow applies changes until ctx ends, reopening a closed watcher, and
// reconciles with the key's current value every reconcileEvery.
func (s *Source) follow(ctx context.Context, kv jetstream.KeyValue, w jetstream.KeyWatcher) {
	const maxWait = 5 * time.Second
	every := s.reconcileEvery
	if every <= 0 {
		every = reconcileEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			return
		case <-tick.C:
			s.reconcile(ctx, kv)
			continue
		case e, ok := <-w.Updates():
			if ok {
				if e != nil {
					s.handle(e)
				}
				continue
			}
		}
		// The watcher closed under us: open it again until ctx ends.
		wait := 100 * time.Millisecond
		for {
			s.log.Warn("routing rules watcher closed; watching again", "bucket", kv.Bucket(), "retry_in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			nw, err := s.watch(ctx, ctx, kv)
			if err == nil {
				w = nw
				break
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			wait = min(2*wait, maxWait)
		}
	}
}
