package events

import (
	"bytes"
	"encoding/json"
)

// Indexes of the envelope members in [envelopeSpans] and [envelopeField].
const (
	fieldData = iota
	fieldObject
	fieldType
	fieldTimestamp
	fieldInstanceID
	fieldEventAttributes
	numFields
)

// envelopeSpans are where [scanSpans] found the value of each envelope
// member in the body: body[span[f][0]:span[f][1]] when found[f].
type envelopeSpans struct {
	span  [numFields][2]int
	found [numFields]bool
}

// scanSpans is the one pass behind [ParseEvent] and [EventType]: it checks
// that body is valid JSON, exactly as json.Valid would (see [validJSON]), and
// finds the envelope's top-level members, instead of json.Unmarshal's two
// passes (a validity scan, then a reflective decode, value by value). ok is
// false whenever the result could differ from json.Unmarshal into
// envelopeWire (invalid JSON, a top level that is not an object, a key that
// is escaped or not ASCII); the callers then take the slow path, which also
// words every error. Like json.Unmarshal, member names match
// case-insensitively and the last duplicate wins.
func scanSpans(body []byte) (s envelopeSpans, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return s, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			// A member: "key" : value, then , or }.
			if i >= len(body) || body[i] != '"' {
				return s, false
			}
			end, ok := validString(body, i)
			if !ok {
				return s, false
			}
			key := body[i+1 : end-1]
			for _, c := range key {
				if c >= 0x80 || c == '\\' {
					return s, false
				}
			}
			if i = skipSpace(body, end); i >= len(body) || body[i] != ':' {
				return s, false
			}
			start := skipSpace(body, i+1)
			stop, ok := validValue(body, start, 1)
			if !ok {
				return s, false
			}
			if f := envelopeField(key); f >= 0 {
				s.span[f], s.found[f] = [2]int{start, stop}, true
			}
			if i = skipSpace(body, stop); i >= len(body) {
				return s, false
			}
			if body[i] == ',' {
				i = skipSpace(body, i+1)
				continue
			}
			if body[i] != '}' {
				return s, false
			}
			i++
			break
		}
	}
	if skipSpace(body, i) != len(body) {
		return s, false
	}
	return s, true
}

// scanEnvelope is the fast path of [ParseEvent]: [scanSpans], then the
// members' values copied, never aliases of body, as json.Unmarshal gives.
func scanEnvelope(body []byte) (w envelopeWire, ok bool) {
	s, ok := scanSpans(body)
	if !ok {
		return w, false
	}
	// One allocation for every copy; full slice expressions keep an append
	// to one field from writing over the next.
	size := 0
	for f, sp := range s.span {
		if s.found[f] {
			size += sp[1] - sp[0]
		}
	}
	buf := make([]byte, 0, size)
	fields := [numFields]*json.RawMessage{&w.Data, &w.Object, &w.Type, &w.Timestamp, &w.InstanceID, &w.EventAttributes}
	for f, sp := range s.span {
		if !s.found[f] {
			continue
		}
		at := len(buf)
		buf = append(buf, body[sp[0]:sp[1]]...)
		*fields[f] = buf[at:len(buf):len(buf)]
	}
	return w, true
}

// envelopeField returns the index, in scanEnvelope's order, of the envelope
// member named key (ASCII case-insensitively, as encoding/json matches), or -1.
func envelopeField(key []byte) int {
	for f, name := range [numFields]string{"data", "object", "type", "timestamp", "instance_id", "event_attributes"} {
		if len(key) == len(name) && bytes.EqualFold(key, []byte(name)) {
			return f
		}
	}
	return -1
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}
