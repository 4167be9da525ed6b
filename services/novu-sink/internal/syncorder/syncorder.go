// Package syncorder keeps subscriber and topic sync commands in order
// across every sink instance. Svix does not deliver in order, and several
// instances consume novu-sink-sync at once, so each command is checked
// against the last one applied for its object, kept in the NATS KV bucket
// [events.SyncStateBucket] and changed only with compare-and-set on the
// entry's revision:
//
//   - a command older than the last one applied for its user (upsert,
//     delete) or membership (add, remove), by the event's timestamp then
//     data.updated_at, is skipped; so is a repeat of the same version;
//   - once a user.deleted is applied, nothing re-creates the subscriber: a
//     later upsert and any add of the user to a topic are skipped; the same
//     holds for an organization whose topic was deleted;
//   - while one instance calls Novu for an object, it holds a lease on the
//     object's entry (for longer than a Novu call can last), so a newer and
//     an older command never reach Novu at the same time and finish in the
//     wrong order; the others wait for it.
//
// Skips are counted (sink_sync_skipped_total{kind,reason}) and logged at
// debug level.
package syncorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// KV is the part of a NATS KV bucket the guard uses; jetstream.KeyValue
// satisfies it.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

var _ KV = jetstream.KeyValue(nil)

// Reasons a command is skipped, the reason label of sink_sync_skipped_total.
const (
	// ReasonStale is a command not newer than the last one applied.
	ReasonStale = "stale"
	// ReasonUserDeleted is a command about a user whose deletion was applied.
	ReasonUserDeleted = "user_deleted"
	// ReasonOrganizationDeleted is a command about an organization whose topic was deleted.
	ReasonOrganizationDeleted = "organization_deleted"
)

// ErrBusy reports an object whose lease another instance still held when
// the wait ended; the command should be retried shortly.
var ErrBusy = errors.New("sync state busy")

// Version orders the commands of one object: the event's timestamp, then
// its data.updated_at.
type Version struct {
	Timestamp int64 `json:"ts"`
	UpdatedAt int64 `json:"upd,omitempty"`
}

// After reports whether v is newer than o.
func (v Version) After(o Version) bool {
	if v.Timestamp != o.Timestamp {
		return v.Timestamp > o.Timestamp
	}
	return v.UpdatedAt > o.UpdatedAt
}

// VersionOf returns cmd's version.
func VersionOf(cmd events.SyncCommand) Version {
	return Version{Timestamp: cmd.EventTimestamp, UpdatedAt: cmd.UpdatedAt}
}

// state is the value of one entry.
type state struct {
	// Applied is the version of the last command applied to Novu.
	Applied Version `json:"applied"`
	// Kind is that command's kind.
	Kind string `json:"kind,omitempty"`
	// Deleted marks a deleted user or organization: final.
	Deleted bool `json:"deleted,omitempty"`
	// Lease is held by the instance calling Novu for this object.
	Lease *lease `json:"lease,omitempty"`
}

type lease struct {
	Owner   string  `json:"owner"`
	ID      string  `json:"id"`
	Until   int64   `json:"until"` // Unix milliseconds
	Version Version `json:"version"`
}

// Metrics are the guard's counters.
type Metrics struct {
	// Skipped is sink_sync_skipped_total{kind,reason}.
	Skipped *prometheus.CounterVec
	// Conflicts is sink_sync_state_conflicts_total: compare-and-set writes
	// that lost to another instance and were tried again.
	Conflicts prometheus.Counter
}

// NewMetrics returns unregistered counters.
func NewMetrics() *Metrics {
	return &Metrics{
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sink_sync_skipped_total",
			Help: "Sync commands not applied to Novu because a newer one was, or the user or organization is deleted, by kind and reason.",
		}, []string{"kind", "reason"}),
		Conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sink_sync_state_conflicts_total",
			Help: "Sync state writes that lost a compare-and-set to another instance and were tried again.",
		}),
	}
}

// Collectors lists the counters, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Skipped, m.Conflicts}
}

// Config tunes a [Guard].
type Config struct {
	// Owner names this instance in leases (a unique id per process).
	Owner string
	// Lease is how long an instance may hold an object while it calls Novu;
	// it must outlast a Novu call (default 30s).
	Lease time.Duration
	// Poll is how often a waiting instance looks at a held lease (default 20ms).
	Poll time.Duration
}

// Guard applies sync commands in order. It is safe for concurrent use, and
// any number of guards (instances) may share one bucket.
type Guard struct {
	kv      KV
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
}

// New returns a guard over kv.
func New(kv KV, cfg Config, log *slog.Logger, m *Metrics) *Guard {
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics()
	}
	return &Guard{kv: kv, cfg: cfg, log: log, metrics: m, now: time.Now}
}

// Decision is what [Guard.Apply] did.
type Decision struct {
	// Skipped reports a command not applied, with the reason (a Reason* constant).
	Skipped bool
	Reason  string
}

// Apply runs call for cmd unless cmd must be skipped, and records cmd as
// applied when call reports done. call runs while this instance holds
// cmd's object, so no other instance calls Novu for it meanwhile. The
// error is a failure of the KV bucket (or [ErrBusy], or ctx's): the command
// was not applied and should be retried.
func (g *Guard) Apply(ctx context.Context, cmd events.SyncCommand, call func(context.Context) (done bool)) (Decision, error) {
	key, err := primaryKey(cmd)
	if err != nil {
		return Decision{}, err
	}
	if d, err := g.tombstones(ctx, cmd); err != nil || d.Skipped {
		return g.skip(ctx, cmd, d), err
	}
	v := VersionOf(cmd)
	rev, st, d, err := g.acquire(ctx, key, cmd, v)
	if err != nil || d.Skipped {
		return g.skip(ctx, cmd, d), err
	}
	done := call(ctx)
	return Decision{}, g.release(context.WithoutCancel(ctx), key, rev, st, cmd, v, done)
}

// skip counts and logs a skipped command.
func (g *Guard) skip(ctx context.Context, cmd events.SyncCommand, d Decision) Decision {
	if d.Skipped {
		g.metrics.Skipped.WithLabelValues(cmd.Kind, d.Reason).Inc()
		g.log.DebugContext(ctx, "sync command skipped", "kind", cmd.Kind, "reason", d.Reason, "id", cmd.ID,
			"subscriber_id", cmd.SubscriberKey(), "topic_key", cmd.TopicKey, "event_timestamp", cmd.EventTimestamp, "updated_at", cmd.UpdatedAt)
	}
	return d
}

// tombstones skips a topic command about a deleted user or organization.
func (g *Guard) tombstones(ctx context.Context, cmd events.SyncCommand) (Decision, error) {
	if cmd.Kind != events.SyncTopicAdd && cmd.Kind != events.SyncTopicRemove {
		return Decision{}, nil
	}
	for _, t := range [...]struct{ key, reason string }{
		{kvKey("user", cmd.SubscriberID), ReasonUserDeleted},
		{kvKey("org", cmd.OrganizationID), ReasonOrganizationDeleted},
	} {
		_, st, err := g.read(ctx, t.key)
		if err != nil {
			return Decision{}, err
		}
		if st.Deleted {
			return Decision{Skipped: true, Reason: t.reason}, nil
		}
	}
	return Decision{}, nil
}

// acquire takes the lease on key for cmd, or decides to skip cmd. It waits
// for another instance's lease to end, at most one lease term.
func (g *Guard) acquire(ctx context.Context, key string, cmd events.SyncCommand, v Version) (uint64, state, Decision, error) {
	waitUntil := g.now().Add(g.cfg.Lease + g.cfg.Poll)
	for {
		rev, st, err := g.read(ctx, key)
		if err != nil {
			return 0, state{}, Decision{}, err
		}
		if d := decide(st, cmd, v); d.Skipped {
			return 0, state{}, d, nil
		}
		now := g.now()
		// A lease held by anyone, this instance included, is waited for: two
		// deliveries of one command in one process must not overlap either.
		if l := st.Lease; l != nil && l.Until > now.UnixMilli() {
			if now.After(waitUntil) {
				return 0, state{}, Decision{}, fmt.Errorf("%w: %s is held by %s", ErrBusy, key, l.Owner)
			}
			if err := sleep(ctx, g.cfg.Poll); err != nil {
				return 0, state{}, Decision{}, err
			}
			continue
		}
		held := st
		held.Lease = &lease{Owner: g.cfg.Owner, ID: cmd.ID, Until: now.Add(g.cfg.Lease).UnixMilli(), Version: v}
		newRev, err := g.write(ctx, key, rev, held)
		switch {
		case errors.Is(err, errConflict):
			continue
		case err != nil:
			return 0, state{}, Decision{}, err
		}
		return newRev, held, Decision{}, nil
	}
}

// decide says whether cmd must be skipped given st.
func decide(st state, cmd events.SyncCommand, v Version) Decision {
	switch {
	case st.Deleted:
		// A deleted user or organization stays deleted, whatever comes later.
		if cmd.Kind == events.SyncSubscriberDelete || cmd.Kind == events.SyncTopicDelete {
			return Decision{Skipped: true, Reason: ReasonStale}
		}
		if cmd.Kind == events.SyncSubscriberUpsert {
			return Decision{Skipped: true, Reason: ReasonUserDeleted}
		}
		return Decision{Skipped: true, Reason: ReasonOrganizationDeleted}
	case cmd.Kind == events.SyncSubscriberDelete || cmd.Kind == events.SyncTopicDelete:
		return Decision{} // a deletion is final: applied whatever its version
	case st.Kind != "" && !v.After(st.Applied):
		return Decision{Skipped: true, Reason: ReasonStale}
	}
	return Decision{}
}

// release records the outcome of the call and drops the lease. A write
// that loses to another instance (the lease expired and was taken) is
// merged into what it wrote: the newest version, and a deletion, win.
func (g *Guard) release(ctx context.Context, key string, rev uint64, held state, cmd events.SyncCommand, v Version, done bool) error {
	st := held
	for {
		next := st
		if next.Lease != nil && next.Lease.Owner == g.cfg.Owner && next.Lease.ID == cmd.ID {
			next.Lease = nil
		}
		if done {
			if v.After(next.Applied) || next.Kind == "" {
				next.Applied, next.Kind = v, cmd.Kind
			}
			if cmd.Kind == events.SyncSubscriberDelete || cmd.Kind == events.SyncTopicDelete {
				next.Deleted, next.Kind = true, cmd.Kind
			}
		}
		_, err := g.write(ctx, key, rev, next)
		if !errors.Is(err, errConflict) {
			return err
		}
		if rev, st, err = g.read(ctx, key); err != nil {
			return err
		}
	}
}

// errConflict is a compare-and-set that lost.
var errConflict = errors.New("revision conflict")

// read returns key's revision (0 when absent) and state.
func (g *Guard) read(ctx context.Context, key string) (uint64, state, error) {
	e, err := g.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, state{}, nil
	}
	if err != nil {
		return 0, state{}, fmt.Errorf("sync state %s: %w", key, err)
	}
	var st state
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		// Not ours to interpret: start over rather than block the object for ever.
		g.log.WarnContext(ctx, "sync state unreadable: overwritten", "key", key, "err", err.Error())
		return e.Revision(), state{}, nil
	}
	return e.Revision(), st, nil
}

// write stores st at key if key is still at rev (0: absent).
func (g *Guard) write(ctx context.Context, key string, rev uint64, st state) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = g.kv.Create(ctx, key, b)
	} else {
		newRev, err = g.kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		g.metrics.Conflicts.Inc()
		return 0, errConflict
	}
	if err != nil {
		return 0, fmt.Errorf("sync state %s: %w", key, err)
	}
	return newRev, nil
}

// primaryKey is the entry of the object cmd changes: the user, the
// membership or the organization.
func primaryKey(cmd events.SyncCommand) (string, error) {
	switch cmd.Kind {
	case events.SyncSubscriberUpsert, events.SyncSubscriberDelete:
		return kvKey("user", cmd.SubscriberKey()), nil
	case events.SyncTopicAdd, events.SyncTopicRemove:
		return kvKey("member", cmd.OrganizationID, cmd.SubscriberID), nil
	case events.SyncTopicDelete:
		return kvKey("org", cmd.OrganizationID), nil
	}
	return "", fmt.Errorf("%w: unknown kind %q", events.ErrInvalidSyncCommand, cmd.Kind)
}

// kvKey joins prefix and ids into a KV key; an id with a character a key
// cannot hold (Clerk ids never have one) is replaced by its hash.
func kvKey(prefix string, ids ...string) string {
	parts := append([]string{prefix}, ids...)
	for i, id := range parts[1:] {
		if !validKeyToken(id) {
			sum := sha256.Sum256([]byte(id))
			parts[i+1] = "h" + hex.EncodeToString(sum[:12])
		}
	}
	return strings.Join(parts, ".")
}

func validKeyToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
