// Package provision is the one owner of the pipeline's JetStream resources:
// the streams, durable consumers and KV buckets declared in pkg/events.
//
// A service calls [Ensure] at start: it creates what is missing (unless
// NATS_PROVISION=false), compares what exists with what its configuration
// asks, and logs one warning per difference naming the fix, but never changes
// an existing stream or consumer, so a service started with a different
// STREAM_DUPLICATE_WINDOW cannot shrink the dedupe window behind an
// operator's back. [Plan] and [Apply] are the deliberate path that changes
// existing resources: the `clerknovu provision` command, devstack and tests.
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Action is what a [Change] does.
type Action string

// Actions of a [Change].
const (
	// Create makes a missing resource.
	Create Action = "create"
	// Update changes an existing resource to the declared configuration.
	Update Action = "update"
)

// Kinds of resources, the first word of [Change.Resource].
const (
	KindStream   = "stream"
	KindConsumer = "consumer"
	KindBucket   = "kv"
)

// Diff is one setting whose value on the server is not the declared one.
type Diff struct {
	// Field names the setting, e.g. "duplicate window".
	Field string `json:"field"`
	// Server and Declared are the values, formatted.
	Server   string `json:"server"`
	Declared string `json:"declared"`
}

// Change is one step of a plan: a resource to create, or to update with its
// differences.
type Change struct {
	Action Action `json:"action"`
	// Kind is [KindStream], [KindConsumer] or [KindBucket].
	Kind string `json:"kind"`
	// Name is the stream, STREAM/durable or bucket name.
	Name string `json:"name"`
	// Diffs are the differences of an update.
	Diffs []Diff `json:"diffs,omitempty"`

	stream   *jetstream.StreamConfig
	consumer *events.Consumer
	bucket   *jetstream.KeyValueConfig
}

// Resource is the kind and name, e.g. "stream CLERK".
func (c Change) Resource() string { return c.Kind + " " + c.Name }

// String describes the change in one line per difference.
func (c Change) String() string {
	if c.Action == Create {
		return "create " + c.Resource()
	}
	lines := make([]string, 0, len(c.Diffs))
	for _, d := range c.Diffs {
		lines = append(lines, fmt.Sprintf("update %s: %s %s -> %s", c.Resource(), d.Field, d.Server, d.Declared))
	}
	return strings.Join(lines, "\n")
}

// Plan compares declared with what the server has and returns the changes
// that make the server match, in creation order (streams, consumers,
// buckets). It changes nothing.
func Plan(ctx context.Context, js jetstream.JetStream, declared events.Resources) ([]Change, error) {
	var changes []Change
	for i := range declared.Streams {
		cfg := &declared.Streams[i]
		s, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			changes = append(changes, Change{Action: Create, Kind: KindStream, Name: cfg.Name, stream: cfg})
			continue
		case err != nil:
			return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
		if d := diff(*cfg, s.CachedInfo().Config); len(d) > 0 {
			changes = append(changes, Change{Action: Update, Kind: KindStream, Name: cfg.Name, Diffs: d, stream: cfg})
		}
	}
	for i := range declared.Consumers {
		c := &declared.Consumers[i]
		cons, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			changes = append(changes, Change{Action: Create, Kind: KindConsumer, Name: c.String(), consumer: c})
			continue
		case err != nil:
			return nil, fmt.Errorf("consumer %s: %w", c, err)
		}
		if d := diff(c.Config, cons.CachedInfo().Config); len(d) > 0 {
			changes = append(changes, Change{Action: Update, Kind: KindConsumer, Name: c.String(), Diffs: d, consumer: c})
		}
	}
	for i := range declared.Buckets {
		b := &declared.Buckets[i]
		// A bucket is a stream KV_<bucket>; compare the settings a bucket
		// declares with that stream's.
		s, err := js.Stream(ctx, "KV_"+b.Bucket)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			changes = append(changes, Change{Action: Create, Kind: KindBucket, Name: b.Bucket, bucket: b})
			continue
		case err != nil:
			return nil, fmt.Errorf("kv %s: %w", b.Bucket, err)
		}
		if d := diffBucket(*b, s.CachedInfo().Config); len(d) > 0 {
			changes = append(changes, Change{Action: Update, Kind: KindBucket, Name: b.Bucket, Diffs: d, bucket: b})
		}
	}
	return changes, nil
}

// Apply makes each change, in order. A resource another process created
// meanwhile counts as created.
func Apply(ctx context.Context, js jetstream.JetStream, changes []Change) error {
	for _, c := range changes {
		if err := apply(ctx, js, c); err != nil {
			return fmt.Errorf("%s %s: %w", c.Action, c.Resource(), err)
		}
	}
	return nil
}

func apply(ctx context.Context, js jetstream.JetStream, c Change) error {
	var err error
	switch {
	case c.stream != nil && c.Action == Create:
		_, err = js.CreateStream(ctx, *c.stream)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	case c.stream != nil:
		_, err = js.UpdateStream(ctx, *c.stream)
	case c.consumer != nil && c.Action == Create:
		_, err = js.CreateConsumer(ctx, c.consumer.Stream, c.consumer.Config)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			err = nil
		}
	case c.consumer != nil:
		_, err = js.UpdateConsumer(ctx, c.consumer.Stream, c.consumer.Config)
	case c.bucket != nil && c.Action == Create:
		_, err = js.CreateKeyValue(ctx, *c.bucket)
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil
		}
	case c.bucket != nil:
		_, err = js.UpdateKeyValue(ctx, *c.bucket)
	default:
		err = errors.New("not a planned change")
	}
	return err
}

// PlanAndApply plans declared and applies the plan; devstack and tests use
// it to make the server match what they declare.
func PlanAndApply(ctx context.Context, js jetstream.JetStream, declared events.Resources) ([]Change, error) {
	changes, err := Plan(ctx, js, declared)
	if err != nil {
		return nil, err
	}
	return changes, Apply(ctx, js, changes)
}

// ErrMissing reports declared resources that do not exist while creating
// them is off (NATS_PROVISION=false).
var ErrMissing = errors.New("missing JetStream resources")

// Ensure is what a service runs at start. With create (NATS_PROVISION, the
// default) it creates the declared resources that are missing; without, a
// missing one is an error wrapping [ErrMissing] that names the fix. For each
// existing resource it logs one warning per setting that differs from the
// declared one, naming the fix, and changes nothing: only [Apply] (the
// clerknovu provision command) changes an existing stream, consumer or bucket.
func Ensure(ctx context.Context, js jetstream.JetStream, declared events.Resources, create bool, log *slog.Logger) error {
	changes, err := Plan(ctx, js, declared)
	if err != nil {
		return err
	}
	var missing []Change
	for _, c := range changes {
		switch {
		case c.Action == Update:
			for _, d := range c.Diffs {
				log.Warn(fmt.Sprintf("%s: %s is %s on the server, %s configured; run clerknovu provision to apply",
					c.Resource(), d.Field, d.Server, d.Declared),
					"resource", c.Resource(), "field", d.Field, "server", d.Server, "configured", d.Declared)
			}
		case create:
			if err := apply(ctx, js, c); err != nil {
				return fmt.Errorf("create %s: %w", c.Resource(), err)
			}
			log.Info("created "+c.Resource(), "resource", c.Resource())
		default:
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		names := make([]string, len(missing))
		for i, c := range missing {
			names[i] = c.Resource()
		}
		return fmt.Errorf("%w: %s: run clerknovu provision or set NATS_PROVISION=true", ErrMissing, strings.Join(names, ", "))
	}
	return nil
}

// alwaysCompared are the fields whose zero value is a real choice (file
// storage, limits retention, discard old, explicit ack, deliver all), so a
// zero declared value is still compared.
var alwaysCompared = map[string]bool{
	"Storage": true, "Retention": true, "Discard": true, "AckPolicy": true, "DeliverPolicy": true,
}

// diff returns the fields of declared (a StreamConfig or ConsumerConfig) that
// the server's configuration does not match. Fields declared as their zero
// value are left to the server's defaults and not compared (except
// [alwaysCompared]); a declared map is compared key by key, since the server
// adds metadata of its own.
func diff[T any](declared, server T) []Diff {
	dv, sv := reflect.ValueOf(declared), reflect.ValueOf(server)
	var out []Diff
	for i := range dv.NumField() {
		f := dv.Type().Field(i)
		d, s := dv.Field(i), sv.Field(i)
		if !f.IsExported() || (d.IsZero() && !alwaysCompared[f.Name]) {
			continue
		}
		if d.Kind() == reflect.Map {
			for _, k := range d.MapKeys() {
				if sk := s.MapIndex(k); !sk.IsValid() || !reflect.DeepEqual(sk.Interface(), d.MapIndex(k).Interface()) {
					out = append(out, Diff{Field: fieldName(f) + " " + fmt.Sprint(k.Interface()), Server: format(sk), Declared: format(d.MapIndex(k))})
				}
			}
			continue
		}
		if !reflect.DeepEqual(d.Interface(), s.Interface()) {
			out = append(out, Diff{Field: fieldName(f), Server: format(s), Declared: format(d)})
		}
	}
	return out
}

// diffBucket compares a bucket's declared settings with its stream's.
func diffBucket(b jetstream.KeyValueConfig, s jetstream.StreamConfig) []Diff {
	var out []Diff
	add := func(field string, server, declared any) {
		if !reflect.DeepEqual(server, declared) {
			out = append(out, Diff{Field: field, Server: fmt.Sprint(server), Declared: fmt.Sprint(declared)})
		}
	}
	if b.Description != "" {
		add("description", s.Description, b.Description)
	}
	add("history", s.MaxMsgsPerSubject, int64(max(b.History, 1)))
	add("ttl", s.MaxAge, b.TTL)
	add("replicas", s.Replicas, max(b.Replicas, 1))
	add("storage", s.Storage, b.Storage)
	return out
}

// fieldName is the field's JSON name in words: duplicate_window becomes
// "duplicate window".
func fieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	return strings.ReplaceAll(name, "_", " ")
}

func format(v reflect.Value) string {
	if !v.IsValid() {
		return "unset"
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v.Interface())
}
