package events

import (
	"maps"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestCopyHeaders(t *testing.T) {
	src := nats.Header{
		"Nats-Msg-Id":          {"msg_1"},
		"Nats-Expected-Stream": {"CLERK"},
		SvixIDHeader:           {"msg_1"},
		"traceparent":          {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		DLQReasonHeader:        {"no rule"},
		DLQStageHeader:         {StageRouter},
		"Multi":                {"a", "b"},
	}
	tests := []struct {
		name string
		drop []string
		want []string
	}{
		{name: "control headers only", want: []string{DLQReasonHeader, DLQStageHeader, "Multi", SvixIDHeader, "traceparent"}},
		{name: "and the dead-letter headers", drop: []string{DLQHeaderPrefix}, want: []string{"Multi", SvixIDHeader, "traceparent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CopyHeaders(src, tt.drop...)
			if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, tt.want) {
				t.Fatalf("keys %v, want %v", keys, tt.want)
			}
			if !slices.Equal(got["Multi"], []string{"a", "b"}) {
				t.Errorf("Multi = %v, want both values", got["Multi"])
			}
			got["Multi"][0] = "changed"
			if src["Multi"][0] != "a" {
				t.Error("the copy shares its values with the source")
			}
		})
	}
}
