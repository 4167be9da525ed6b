package events

import (
	"bytes"
	"encoding/json"
)

// scanEnvelope is the fast path of [ParseEvent]: in one pass it checks that
// body is valid JSON, exactly as json.Valid would (see [validJSON]), and
// finds the envelope's top-level members, instead of json.Unmarshal's two
// passes (a validity scan, then a reflective decode, value by value). ok is
// false whenever the result could differ from json.Unmarshal into
// envelopeWire (invalid JSON, a top level that is not an object, a key that
// is escaped or not ASCII); ParseEvent then takes the slow path, which also
// words every error. Like json.Unmarshal, member names match
// case-insensitively, the last duplicate wins, and the values are copies,
// never aliases of body.
func scanEnvelope(body []byte) (w envelopeWire, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return w, false
	}
	var spans [6][2]int
	var found [6]bool
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			// A member: "key" : value, then , or }.
			if i >= len(body) || body[i] != '"' {
				return w, false
			}
			end, ok := validString(body, i)
			if !ok {
				return w, false
			}
			key := body[i+1 : end-1]
			for _, c := range key {
				if c >= 0x80 || c == '\\' {
					return w, false
				}
			}
			if i = skipSpace(body, end); i >= len(body) || body[i] != ':' {
				return w, false
			}
			start := skipSpace(body, i+1)
			stop, ok := validValue(body, start, 1)
			if !ok {
				return w, false
			}
			if f := envelopeField(key); f >= 0 {
				spans[f], found[f] = [2]int{start, stop}, true
			}
			if i = skipSpace(body, stop); i >= len(body) {
				return w, false
			}
			if body[i] == ',' {
				i = skipSpace(body, i+1)
				continue
			}
			if body[i] != '}' {
				return w, false
			}
			i++
			break
		}
	}
	if skipSpace(body, i) != len(body) {
		return w, false
	}
	// One allocation for every copy; full slice expressions keep an append
	// to one field from writing over the next.
	size := 0
	for f, s := range spans {
		if found[f] {
			size += s[1] - s[0]
		}
	}
	buf := make([]byte, 0, size)
	fields := [6]*json.RawMessage{&w.Data, &w.Object, &w.Type, &w.Timestamp, &w.InstanceID, &w.EventAttributes}
	for f, s := range spans {
		if !found[f] {
			continue
		}
		at := len(buf)
		buf = append(buf, body[s[0]:s[1]]...)
		*fields[f] = buf[at:len(buf):len(buf)]
	}
	return w, true
}

// envelopeField returns the index, in scanEnvelope's order, of the envelope
// member named key (ASCII case-insensitively, as encoding/json matches), or -1.
func envelopeField(key []byte) int {
	for f, name := range [6]string{"data", "object", "type", "timestamp", "instance_id", "event_attributes"} {
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
