package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// scanSeeds are envelopes where a one-pass scan could go wrong.
var scanSeeds = []string{
	`{"type":"user.created","data":{"id":"user_1"}}`,
	` {"TYPE":"user.created","Data":[1,2,{"a":"}"}],"type":"session.created"} `,
	`{"type":"a","type":"b"}`,
	`{"typ\u0065":"user.created"}`,
	`{"type":"user.created","data":"a \"quoted\" } ] string \\"}`,
	`{"data":null,"type":null,"object":1,"timestamp":1.5e3,"instance_id":true,"event_attributes":{}}`,
	`{"data":{"nested":{"deep":[[[{"x":"\u007d"}]]]}},"type":"x"}`,
	`{"ſype":"user.created"}`,
	`{"type":"user.created","extra":[true,false,null,-0.5E-2,"",{}]}`,
	`{}`,
	`[]`,
	`{"type":"user.created",}`,
	`{"type":"user.created"} trailing`,
	`{"type":"user.created"`,
	"{\"type\":\"user.created\",\"data\":\"\x01\"}",
	"{\"type\":\"user\xff.created\"}",
	`{"timestamp":-12,"type":"t"}`,
}

// FuzzScanEnvelope checks the fast path against json.Unmarshal: whenever it
// answers, it finds exactly the members, bytes and all, that json.Unmarshal
// into envelopeWire finds.
func FuzzScanEnvelope(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	for _, s := range samples.All() {
		f.Add(s.Body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanEnvelope(body)
		var want envelopeWire
		err := json.Unmarshal(body, &want)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("scanEnvelope accepted %q, json.Unmarshal refused it: %v", body, err)
		}
		pairs := []struct {
			name      string
			got, want json.RawMessage
		}{
			{"data", got.Data, want.Data}, {"object", got.Object, want.Object}, {"type", got.Type, want.Type},
			{"timestamp", got.Timestamp, want.Timestamp}, {"instance_id", got.InstanceID, want.InstanceID},
			{"event_attributes", got.EventAttributes, want.EventAttributes},
		}
		for _, p := range pairs {
			if !bytes.Equal(p.got, p.want) || (p.got == nil) != (p.want == nil) {
				t.Errorf("%q: %s = %q, json.Unmarshal gives %q", body, p.name, p.got, p.want)
			}
		}
	})
}

func TestScanEnvelopeCopies(t *testing.T) {
	body := []byte(`{"data":{"id":"user_1"},"event_attributes":{"a":1},"type":"user.created"}`)
	w, ok := scanEnvelope(body)
	if !ok {
		t.Fatalf("scanEnvelope(%s) fell back to the slow path", body)
	}
	w.Data = append(w.Data, "tail"...)
	if string(w.EventAttributes) != `{"a":1}` {
		t.Errorf("appending to data changed event_attributes to %s", w.EventAttributes)
	}
	for i := range body {
		body[i] = 'x'
	}
	if string(w.Type) != `"user.created"` {
		t.Errorf("type aliases the body: %s after overwriting it", w.Type)
	}
}

// TestScanEnvelopeSamples checks that every realistic body takes the fast path.
func TestScanEnvelopeSamples(t *testing.T) {
	for _, s := range samples.All() {
		if _, ok := scanEnvelope(s.Body); !ok {
			t.Errorf("%s: scanEnvelope fell back to the slow path", s.Name)
		}
	}
}

func TestScanEnvelopeFallsBack(t *testing.T) {
	for _, s := range []string{`[]`, `{"typ\u0065":"x"}`, `{"type":"x",}`, `{"ſype":"x"}`, `nope`} {
		if _, ok := scanEnvelope([]byte(s)); ok {
			t.Errorf("scanEnvelope(%s) took the fast path, want the slow one", s)
		}
	}
}

// validSeeds are inputs at the edges of the JSON grammar.
var validSeeds = []string{
	``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `.5`, `+1`, `2.5e10`,
	`true`, `tru`, `truex`, `null`, `nul`, `false`, `"`, `""`, `"\"`, `"\u00e9"`, `"\u00g9"`, `"\x"`,
	"\"\x1f\"", "\"\x7f\xff\"", `[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a"}`, `{"a":}`, `{"a":1,}`,
	`{"a":1 "b":2}`, `{1:2}`, ` {"a" : [ 1 , { } ] } `, `{}{}`, `[[[[[]]]]]`, `{"a":"b"}x`,
}

// FuzzEventType checks that EventType accepts and refuses exactly what
// ParseEvent does, with the same type and the same error.
func FuzzEventType(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	for _, s := range samples.All() {
		f.Add(s.Body)
	}
	f.Add([]byte(`{"type":"user.cr\u0065ated"}`))
	f.Add([]byte(`{"type":"us\u00e9r"}`))
	f.Add([]byte(`{"type":"user.*"}`))
	f.Add([]byte(`{"type":7}`))
	f.Add([]byte(`{"type":null,"TYPE":"user.created"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := EventType(body)
		ev, want := ParseEvent(body)
		if (err == nil) != (want == nil) || (err != nil && err.Error() != want.Error()) {
			t.Fatalf("EventType(%q) error %v, ParseEvent's %v", body, err, want)
		}
		if got != ev.Type {
			t.Fatalf("EventType(%q) = %q, ParseEvent's %q", body, got, ev.Type)
		}
	})
}

// FuzzValidJSON checks validJSON against json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range append(validSeeds, scanSeeds...) {
		f.Add([]byte(s))
	}
	for _, s := range samples.All() {
		f.Add(s.Body)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

// TestHasStringStop checks the eight-bytes-at-a-time test against the
// byte table for every byte value in every lane, among plain bytes of both
// halves of the byte range.
func TestHasStringStop(t *testing.T) {
	for _, filler := range []byte{'a', 0x20, 0x7f, 0x80, 0xff} {
		for v := range 256 {
			for lane := range 8 {
				var w [8]byte
				for i := range w {
					w[i] = filler
				}
				w[lane] = byte(v)
				if got := hasStringStop(binary.LittleEndian.Uint64(w[:])); got != stringStop[v] {
					t.Fatalf("hasStringStop(%q) = %v, want %v", w, got, stringStop[v])
				}
			}
		}
	}
}

// TestValidStringAtEveryOffset puts each kind of stop byte at every offset
// of a long string, so both the eight-byte and the byte loop meet it.
func TestValidStringAtEveryOffset(t *testing.T) {
	for _, stop := range []string{`"`, `\n`, `\u00e9`, "\x01", `\x`, "\x7f\xff"} {
		for n := range 24 {
			b := []byte(`"` + strings.Repeat("x", n) + stop + strings.Repeat("y", 17) + `"`)
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
			}
		}
	}
}

func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{maxNestingDepth - 1, maxNestingDepth, maxNestingDepth + 1} {
		b := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("depth %d: validJSON = %v, json.Valid = %v", depth, got, want)
		}
	}
}
