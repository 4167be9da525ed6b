package events_test

import (
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// benchSamples runs check on realistic envelopes.
func benchSamples(b *testing.B, check func([]byte) error) {
	for _, name := range []string{"user.created", "session.created", "email.created/magic_link_sign_in"} {
		s, ok := samples.Get(name)
		if !ok {
			b.Fatalf("no sample %q", name)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(s.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := check(s.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseEvent decodes realistic envelopes: the router parses every
// event.
func BenchmarkParseEvent(b *testing.B) {
	benchSamples(b, func(body []byte) error { _, err := events.ParseEvent(body); return err })
}

// BenchmarkEventType checks what the receiver checks before storing a
// webhook: the JSON and the type, nothing copied.
func BenchmarkEventType(b *testing.B) {
	benchSamples(b, func(body []byte) error { _, err := events.EventType(body); return err })
}
