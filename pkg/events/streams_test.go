package events

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestStreamDefaults(t *testing.T) {
	tests := []struct {
		cfg             jetstream.StreamConfig
		name            string
		subjects        []string
		maxAge, dupeWin time.Duration
	}{
		{cfg: ClerkStream(), name: StreamClerk, subjects: []string{"clerk.>"}, maxAge: 7 * 24 * time.Hour, dupeWin: 36 * time.Hour},
		{cfg: NovuStream(), name: StreamNovu, subjects: []string{"novu.trigger.>", "novu.sync.>"}, maxAge: 7 * 24 * time.Hour, dupeWin: 36 * time.Hour},
		{cfg: DLQStream(), name: StreamDLQ, subjects: []string{"dlq.>"}, maxAge: 30 * 24 * time.Hour, dupeWin: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			if c.Name != tt.name || !slices.Equal(c.Subjects, tt.subjects) {
				t.Errorf("name %q subjects %q", c.Name, c.Subjects)
			}
			if c.MaxAge != tt.maxAge || c.Duplicates != tt.dupeWin {
				t.Errorf("max age %v duplicates %v, want %v %v", c.MaxAge, c.Duplicates, tt.maxAge, tt.dupeWin)
			}
			if c.Storage != jetstream.FileStorage || c.Replicas != 1 || c.Retention != jetstream.LimitsPolicy || c.Discard != jetstream.DiscardOld {
				t.Errorf("storage %v replicas %d retention %v discard %v", c.Storage, c.Replicas, c.Retention, c.Discard)
			}
			if c.Description == "" {
				t.Error("no description")
			}
		})
	}
	// The CLERK window must outlast Svix's retry schedule (about 27 h 35 min).
	if DefaultDuplicateWindow < 28*time.Hour {
		t.Errorf("DefaultDuplicateWindow %v is shorter than Svix's retries", DefaultDuplicateWindow)
	}
}

func TestStreamOptions(t *testing.T) {
	tests := []struct {
		name                   string
		opts                   []StreamOption
		wantMaxAge, wantDupWin time.Duration
		wantDLQMaxAge          time.Duration
		wantReplicas           int
		wantStorage            jetstream.StorageType
	}{
		{
			name:       "all options",
			opts:       []StreamOption{WithMaxAge(48 * time.Hour), WithDuplicateWindow(2 * time.Hour), WithDLQMaxAge(24 * time.Hour), WithReplicas(3), WithMemoryStorage()},
			wantMaxAge: 48 * time.Hour, wantDupWin: 2 * time.Hour, wantDLQMaxAge: 24 * time.Hour, wantReplicas: 3, wantStorage: jetstream.MemoryStorage,
		},
		{
			name:       "duplicate window capped at a shorter max age",
			opts:       []StreamOption{WithMaxAge(time.Hour)},
			wantMaxAge: time.Hour, wantDupWin: time.Hour, wantDLQMaxAge: DefaultDLQMaxAge, wantReplicas: 1, wantStorage: jetstream.FileStorage,
		},
		{
			name:       "explicit window capped too",
			opts:       []StreamOption{WithDuplicateWindow(3 * time.Hour), WithMaxAge(2 * time.Hour)},
			wantMaxAge: 2 * time.Hour, wantDupWin: 2 * time.Hour, wantDLQMaxAge: DefaultDLQMaxAge, wantReplicas: 1, wantStorage: jetstream.FileStorage,
		},
		{
			name:       "unlimited max age leaves the window",
			opts:       []StreamOption{WithMaxAge(0)},
			wantMaxAge: 0, wantDupWin: DefaultDuplicateWindow, wantDLQMaxAge: DefaultDLQMaxAge, wantReplicas: 1, wantStorage: jetstream.FileStorage,
		},
		{
			name:       "replicas below one become one",
			opts:       []StreamOption{WithReplicas(0)},
			wantMaxAge: DefaultMaxAge, wantDupWin: DefaultDuplicateWindow, wantDLQMaxAge: DefaultDLQMaxAge, wantReplicas: 1, wantStorage: jetstream.FileStorage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := StreamConfigs(tt.opts...)
			if len(all) != 3 || all[0].Name != StreamClerk || all[1].Name != StreamNovu || all[2].Name != StreamDLQ {
				t.Fatalf("StreamConfigs order: %v", names(all))
			}
			for _, c := range all[:2] {
				if c.MaxAge != tt.wantMaxAge || c.Duplicates != tt.wantDupWin {
					t.Errorf("%s: max age %v duplicates %v, want %v %v", c.Name, c.MaxAge, c.Duplicates, tt.wantMaxAge, tt.wantDupWin)
				}
			}
			if dlq := all[2]; dlq.MaxAge != tt.wantDLQMaxAge || dlq.Duplicates != DLQDuplicateWindow {
				t.Errorf("DLQ: max age %v duplicates %v", dlq.MaxAge, dlq.Duplicates)
			}
			for _, c := range all {
				if c.Replicas != tt.wantReplicas || c.Storage != tt.wantStorage {
					t.Errorf("%s: replicas %d storage %v, want %d %v", c.Name, c.Replicas, c.Storage, tt.wantReplicas, tt.wantStorage)
				}
			}
		})
	}
}

func names(cfgs []jetstream.StreamConfig) []string {
	var out []string
	for _, c := range cfgs {
		out = append(out, c.Name)
	}
	return out
}

func TestConsumers(t *testing.T) {
	tests := []struct {
		name           string
		new            func(...ConsumerOption) Consumer
		filter, stream string
	}{
		{name: DurableRouter, new: RouterConsumer, filter: ClerkSubjectsAll, stream: StreamClerk},
		{name: DurableSink, new: SinkConsumer, filter: NovuTriggerSubjectsAll, stream: StreamNovu},
		{name: DurableSinkSync, new: SinkSyncConsumer, filter: NovuSyncSubjectsAll, stream: StreamNovu},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.new()
			c := d.Config
			if d.Stream != tt.stream || c.Durable != tt.name || c.FilterSubject != tt.filter {
				t.Errorf("stream %q durable %q filter %q", d.Stream, c.Durable, c.FilterSubject)
			}
			if c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverAllPolicy {
				t.Errorf("ack %v deliver %v", c.AckPolicy, c.DeliverPolicy)
			}
			if c.AckWait != 30*time.Second || c.MaxAckPending != 1024 || c.Description == "" {
				t.Errorf("ack wait %v max ack pending %d description %q", c.AckWait, c.MaxAckPending, c.Description)
			}
			c = tt.new(WithAckWait(time.Second), WithMaxAckPending(8), WithMaxDeliver(5)).Config
			if c.AckWait != time.Second || c.MaxAckPending != 8 || c.MaxDeliver != 5 {
				t.Errorf("options not applied: %+v", c)
			}
		})
	}
}

func TestDeclared(t *testing.T) {
	r := Declared(ResourceOptions{Streams: []StreamOption{WithReplicas(3)}, Router: []ConsumerOption{WithAckWait(time.Minute)}, RoutesBucket: "ROUTES"})
	if got := names(r.Streams); !slices.Equal(got, []string{StreamClerk, StreamNovu, StreamDLQ}) {
		t.Errorf("streams %q", got)
	}
	var durables []string
	for _, c := range r.Consumers {
		durables = append(durables, c.String())
	}
	if want := []string{"CLERK/router", "NOVU/novu-sink", "NOVU/novu-sink-sync"}; !slices.Equal(durables, want) {
		t.Errorf("consumers %q, want %q", durables, want)
	}
	if r.Consumers[0].Config.AckWait != time.Minute {
		t.Errorf("router ack wait %v", r.Consumers[0].Config.AckWait)
	}
	if len(r.Buckets) != 2 || r.Buckets[0].Bucket != "ROUTES" || r.Buckets[0].Replicas != 3 || r.Buckets[0].History != RoutesBucketHistory ||
		r.Buckets[1].Bucket != SyncStateBucket || r.Buckets[1].Replicas != 3 {
		t.Errorf("buckets %+v", r.Buckets)
	}
	if r := Declared(ResourceOptions{}); len(r.Buckets) != 1 || r.Buckets[0].Bucket != SyncStateBucket {
		t.Errorf("no routes bucket name: buckets %+v, want only %s", r.Buckets, SyncStateBucket)
	}
}
