package provision

import (
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go/jetstream"
)

func TestDiff(t *testing.T) {
	declared := events.ClerkStream()
	declared.Metadata = map[string]string{"owner": "pipeline"}
	// What a server returns: the declared settings plus its own defaults and metadata.
	server := declared
	server.MaxMsgs, server.MaxBytes, server.MaxMsgSize, server.MaxConsumers = -1, -1, -1, -1
	server.Metadata = map[string]string{"owner": "pipeline", "_nats.req.level": "0"}
	tests := []struct {
		name   string
		change func(*jetstream.StreamConfig)
		want   []Diff
	}{
		{name: "server defaults and extra metadata are no difference", change: func(*jetstream.StreamConfig) {}},
		{name: "duplicate window", change: func(s *jetstream.StreamConfig) { s.Duplicates = 2 * time.Minute },
			want: []Diff{{Field: "duplicate window", Server: "2m0s", Declared: "36h0m0s"}}},
		{name: "storage, a zero value that is still compared", change: func(s *jetstream.StreamConfig) { s.Storage = jetstream.MemoryStorage },
			want: []Diff{{Field: "storage", Server: "Memory", Declared: "File"}}},
		{name: "subjects", change: func(s *jetstream.StreamConfig) { s.Subjects = []string{"clerk.user.>"} },
			want: []Diff{{Field: "subjects", Server: "[clerk.user.>]", Declared: "[clerk.>]"}}},
		{name: "declared metadata key changed", change: func(s *jetstream.StreamConfig) {
			s.Metadata = map[string]string{"owner": "someone"}
		}, want: []Diff{{Field: "metadata owner", Server: `"someone"`, Declared: `"pipeline"`}}},
		{name: "two fields", change: func(s *jetstream.StreamConfig) { s.MaxAge, s.Replicas = time.Hour, 3 },
			want: []Diff{{Field: "max age", Server: "1h0m0s", Declared: "168h0m0s"}, {Field: "num replicas", Server: "3", Declared: "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := server
			s.Metadata = map[string]string{"owner": "pipeline", "_nats.req.level": "0"}
			tt.change(&s)
			got := diff(declared, s)
			if len(got) != len(tt.want) {
				t.Fatalf("diff = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("diff[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDiffBucket(t *testing.T) {
	b := events.RoutesBucket("ROUTES")
	s := jetstream.StreamConfig{Description: b.Description, MaxMsgsPerSubject: int64(b.History), Replicas: 1}
	if d := diffBucket(b, s); len(d) != 0 {
		t.Errorf("matching bucket: %+v", d)
	}
	s.MaxMsgsPerSubject = 1
	if d := diffBucket(b, s); len(d) != 1 || d[0].Field != "history" || d[0].Server != "1" || d[0].Declared != "10" {
		t.Errorf("history differs: %+v", d)
	}
}
