package events

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for the streams.
const (
	// DefaultMaxAge keeps Clerk events and commands for a week so they can be replayed.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultDuplicateWindow covers Svix's retry schedule: about 27.6 h of retries,
	// about 33 h with jitter. JetStream's own default of 2 minutes would let a Svix
	// retry through as a second event.
	//
	// Memory: the server keeps every message id seen in the window in an in-memory
	// map, about 130 bytes per id plus the id itself (a svix-id is 31 bytes), so
	// roughly 160 bytes per event and per stream. 10 events/s for 36 h is 1.3 M ids,
	// about 200 MB; 100 events/s is about 2 GB. Size the server for your peak
	// sustained rate, or shorten the window with [WithDuplicateWindow] if your
	// volume is high and you accept that a very late Svix retry is deduplicated only
	// by Novu's transactionId.
	DefaultDuplicateWindow = 36 * time.Hour
	// DefaultDLQMaxAge keeps dead letters for 30 days.
	DefaultDLQMaxAge = 30 * 24 * time.Hour
	// DLQDuplicateWindow dedupes a dead letter published twice because the
	// source's ack was lost.
	DLQDuplicateWindow = time.Hour
)

type streamConfig struct {
	maxAge          time.Duration
	duplicateWindow time.Duration
	dlqMaxAge       time.Duration
	replicas        int
	storage         jetstream.StorageType
}

// StreamOption changes the stream configurations returned by [StreamConfigs].
type StreamOption func(*streamConfig)

// WithMaxAge sets how long CLERK and NOVU keep messages (default [DefaultMaxAge]).
func WithMaxAge(d time.Duration) StreamOption { return func(c *streamConfig) { c.maxAge = d } }

// WithDuplicateWindow sets the Nats-Msg-Id dedupe window of CLERK and NOVU
// (default [DefaultDuplicateWindow]). It is capped at the max age.
func WithDuplicateWindow(d time.Duration) StreamOption {
	return func(c *streamConfig) { c.duplicateWindow = d }
}

// WithDLQMaxAge sets how long DLQ keeps dead letters (default [DefaultDLQMaxAge]).
func WithDLQMaxAge(d time.Duration) StreamOption { return func(c *streamConfig) { c.dlqMaxAge = d } }

// WithReplicas sets the replica count of every stream: 1 (default) on a single
// server, 3 in a cluster.
func WithReplicas(n int) StreamOption { return func(c *streamConfig) { c.replicas = n } }

// WithMemoryStorage keeps streams in memory instead of on disk; for benchmarks only.
func WithMemoryStorage() StreamOption {
	return func(c *streamConfig) { c.storage = jetstream.MemoryStorage }
}

func newStreamConfig(opts []StreamOption) streamConfig {
	c := streamConfig{
		maxAge:          DefaultMaxAge,
		duplicateWindow: DefaultDuplicateWindow,
		dlqMaxAge:       DefaultDLQMaxAge,
		replicas:        1,
		storage:         jetstream.FileStorage,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.duplicateWindow > c.maxAge && c.maxAge > 0 {
		c.duplicateWindow = c.maxAge
	}
	if c.replicas < 1 {
		c.replicas = 1
	}
	return c
}

// ClerkStream is the configuration of [StreamClerk]: every clerk.> subject, file
// storage, limits retention for the max age, and a duplicate window over Svix's
// retry schedule.
func ClerkStream(opts ...StreamOption) jetstream.StreamConfig {
	c := newStreamConfig(opts)
	return c.stream(StreamClerk, "Verified Clerk webhooks, one message per svix-id", c.maxAge, c.duplicateWindow, ClerkSubjectsAll)
}

// NovuStream is the configuration of [StreamNovu]: trigger commands,
// deduplicated by transactionId, and subscriber and topic sync commands,
// deduplicated by their id, over the same window as CLERK.
func NovuStream(opts ...StreamOption) jetstream.StreamConfig {
	c := newStreamConfig(opts)
	return c.stream(StreamNovu, "Novu trigger commands, one message per transactionId; sync commands, one per id", c.maxAge, c.duplicateWindow, NovuTriggerSubjectsAll, NovuSyncSubjectsAll)
}

// DLQStream is the configuration of [StreamDLQ]: dead letters from every stage,
// kept for a month.
func DLQStream(opts ...StreamOption) jetstream.StreamConfig {
	c := newStreamConfig(opts)
	return c.stream(StreamDLQ, "Dead letters: events and commands that cannot be delivered, with the reason in headers", c.dlqMaxAge, DLQDuplicateWindow, DLQSubjectsAll)
}

// stream is the shape every stream of the pipeline shares: subject
// wildcards, limits retention, discard old.
func (c streamConfig) stream(name, description string, maxAge, duplicates time.Duration, subjects ...string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		Storage:     c.storage,
		MaxAge:      maxAge,
		Duplicates:  duplicates,
		Replicas:    c.replicas,
		Discard:     jetstream.DiscardOld,
	}
}

// StreamConfigs returns the configurations of every stream of the pipeline, in
// the order they should be created.
func StreamConfigs(opts ...StreamOption) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{ClerkStream(opts...), NovuStream(opts...), DLQStream(opts...)}
}

// ConsumerOption changes a consumer configuration returned by [RouterConsumer],
// [SinkConsumer] or [SinkSyncConsumer].
type ConsumerOption func(*jetstream.ConsumerConfig)

// WithAckWait sets how long the server waits for an ack before redelivering.
func WithAckWait(d time.Duration) ConsumerOption {
	return func(c *jetstream.ConsumerConfig) { c.AckWait = d }
}

// WithMaxAckPending bounds the messages delivered and not yet acked, across all instances.
func WithMaxAckPending(n int) ConsumerOption {
	return func(c *jetstream.ConsumerConfig) { c.MaxAckPending = n }
}

// WithMaxDeliver bounds the deliveries of one message; the services dead-letter
// a message on its last delivery, so keep it above their own max.
func WithMaxDeliver(n int) ConsumerOption {
	return func(c *jetstream.ConsumerConfig) { c.MaxDeliver = n }
}

// Consumer is a durable consumer of the pipeline and the stream it reads.
type Consumer struct {
	// Stream is the stream the consumer reads.
	Stream string
	// Config is its configuration; Config.Durable is its name.
	Config jetstream.ConsumerConfig
}

// String names the consumer as STREAM/durable.
func (c Consumer) String() string { return c.Stream + "/" + c.Config.Durable }

// durable is the shape every durable pull consumer of the pipeline shares:
// explicit ack, delivery from the start of the stream, shared by every
// instance of the service.
func durable(stream, name, filter, description string, opts []ConsumerOption) Consumer {
	c := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   description,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 1024,
		MaxDeliver:    -1,
	}
	for _, o := range opts {
		o(&c)
	}
	return Consumer{Stream: stream, Config: c}
}

// RouterConsumer is [DurableRouter] on [StreamClerk]: every Clerk event.
func RouterConsumer(opts ...ConsumerOption) Consumer {
	return durable(StreamClerk, DurableRouter, ClerkSubjectsAll, "Clerk events to route, shared by every router instance", opts)
}

// SinkConsumer is [DurableSink] on [StreamNovu]: every trigger command.
func SinkConsumer(opts ...ConsumerOption) Consumer {
	return durable(StreamNovu, DurableSink, NovuTriggerSubjectsAll, "Trigger commands for Novu, shared by every novu-sink instance", opts)
}

// SinkSyncConsumer is [DurableSinkSync] on [StreamNovu]: every subscriber
// and topic sync command.
func SinkSyncConsumer(opts ...ConsumerOption) Consumer {
	return durable(StreamNovu, DurableSinkSync, NovuSyncSubjectsAll, "Subscriber and topic sync commands for Novu, shared by every novu-sink instance", opts)
}

// RoutesBucketHistory is how many revisions of the rules the routes bucket keeps.
const RoutesBucketHistory = 10

// RoutesBucket is the configuration of the router's rules KV bucket (named
// by ROUTES_KV_BUCKET): the YAML rules under [RoutesKVKey], the last
// [RoutesBucketHistory] revisions kept, the streams' replica count.
func RoutesBucket(name string, opts ...StreamOption) jetstream.KeyValueConfig {
	c := newStreamConfig(opts)
	return jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "Routing rules of the router, YAML under the key " + RoutesKVKey,
		History:     RoutesBucketHistory,
		Replicas:    c.replicas,
		Storage:     c.storage,
	}
}

// ResourceOptions shape the resources [Declared] returns.
type ResourceOptions struct {
	// Streams shape every stream and bucket.
	Streams []StreamOption
	// Router, Sink and SinkSync shape the consumers of [RouterConsumer],
	// [SinkConsumer] and [SinkSyncConsumer].
	Router, Sink, SinkSync []ConsumerOption
	// RoutesBucket names the router's rules bucket; "" declares none.
	RoutesBucket string
}

// Resources are JetStream streams, durable consumers and KV buckets.
type Resources struct {
	Streams   []jetstream.StreamConfig
	Consumers []Consumer
	Buckets   []jetstream.KeyValueConfig
}

// OnlyStreams returns r with only the named streams: what one service reads
// or writes, so it checks (and may read the configuration of) nothing else.
func (r Resources) OnlyStreams(names ...string) Resources {
	kept := make([]jetstream.StreamConfig, 0, len(names))
	for _, s := range r.Streams {
		if slices.Contains(names, s.Name) {
			kept = append(kept, s)
		}
	}
	r.Streams = kept
	return r
}

// Declared returns every JetStream resource of the pipeline, in the order
// they should be created: the one list to extend when a resource is added.
func Declared(o ResourceOptions) Resources {
	r := Resources{
		Streams: StreamConfigs(o.Streams...),
		Consumers: []Consumer{
			RouterConsumer(o.Router...),
			SinkConsumer(o.Sink...),
			SinkSyncConsumer(o.SinkSync...),
		},
	}
	if o.RoutesBucket != "" {
		r.Buckets = append(r.Buckets, RoutesBucket(o.RoutesBucket, o.Streams...))
	}
	r.Buckets = append(r.Buckets, SyncStateKV(o.Streams...))
	return r
}

// SyncStateBucket is the KV bucket where the sink keeps, per user, per
// organization membership and per organization, the last sync applied to
// Novu, so that sync commands delivered out of order are applied in order and
// a deleted user is never re-created.
const SyncStateBucket = "NOVU_SYNC_STATE"

// syncStateMargin is how much longer than the longest replay window the sync
// state is kept.
const syncStateMargin = 24 * time.Hour

// SyncStateKV is the configuration of [SyncStateBucket]. Its TTL outlasts
// every window in which a command can still arrive: the max age of CLERK
// and NOVU (a redelivery or a replay) and of DLQ (a redriven dead letter),
// plus a day; a shorter TTL would let a late user.updated re-create a user
// whose deletion has been forgotten. One value per key (history 1): the
// revision is what instances compare-and-set on.
func SyncStateKV(opts ...StreamOption) jetstream.KeyValueConfig {
	c := newStreamConfig(opts)
	return jetstream.KeyValueConfig{
		Bucket:      SyncStateBucket,
		Description: "Last sync applied to Novu per user, membership and organization (order safety)",
		History:     1,
		TTL:         max(c.maxAge, c.dlqMaxAge) + syncStateMargin,
		Storage:     c.storage,
		Replicas:    c.replicas,
	}
}
