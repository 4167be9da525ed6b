package events_test

import (
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// BenchmarkParseEvent decodes realistic envelopes: the receiver parses every
// webhook once, the router every event again.
func BenchmarkParseEvent(b *testing.B) {
	for _, name := range []string{"user.created", "session.created", "email.created/magic_link_sign_in"} {
		s, ok := samples.Get(name)
		if !ok {
			b.Fatalf("no sample %q", name)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(s.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.ParseEvent(s.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEventType checks what the receiver checks before storing a
// webhook: the JSON and the type, nothing copied.
func BenchmarkEventType(b *testing.B) {
	for _, name := range []string{"user.created", "session.created", "email.created/magic_link_sign_in"} {
		s, ok := samples.Get(name)
		if !ok {
			b.Fatalf("no sample %q", name)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(s.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.EventType(s.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
