package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidEvent reports a body that is not a usable Clerk event envelope.
var ErrInvalidEvent = errors.New("invalid event")

// Event is the Clerk webhook envelope. Data and EventAttributes stay raw JSON:
// Clerk metadata may hold integers beyond 2^53 and must never go through float64;
// the bytes are forwarded to Novu unchanged.
type Event struct {
	// Data is the event's object (a user, a session, an email...), byte-exact.
	Data json.RawMessage `json:"data"`
	// Object is always "event".
	Object string `json:"object"`
	// Type is the event type, e.g. user.created.
	Type string `json:"type"`
	// Timestamp is when Clerk emitted the event, in Unix milliseconds.
	Timestamp int64 `json:"timestamp"`
	// InstanceID is the Clerk instance, ins_...
	InstanceID string `json:"instance_id,omitempty"`
	// EventAttributes holds http_request.client_ip and .user_agent, byte-exact.
	EventAttributes json.RawMessage `json:"event_attributes,omitempty"`
}

// envelopeWire decodes the envelope without trusting the types of its fields,
// so a wrong type yields a clear reason instead of a generic decode error.
type envelopeWire struct {
	Data            json.RawMessage `json:"data"`
	Object          json.RawMessage `json:"object"`
	Type            json.RawMessage `json:"type"`
	Timestamp       json.RawMessage `json:"timestamp"`
	InstanceID      json.RawMessage `json:"instance_id"`
	EventAttributes json.RawMessage `json:"event_attributes"`
}

// ParseEvent decodes a Clerk envelope. It fails with an error wrapping
// [ErrInvalidEvent] when body is not a JSON object, when type is missing or not
// a string, or when the type is not valid subject tokens (see [SubjectTokens]).
// data may be any JSON value, or absent.
func ParseEvent(body []byte) (Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, fmt.Errorf("%w: body is not a JSON object", ErrInvalidEvent)
	}
	w, fast := scanEnvelope(body)
	if !fast {
		if err := json.Unmarshal(body, &w); err != nil {
			return Event{}, fmt.Errorf("%w: body is not valid JSON: %v", ErrInvalidEvent, jsonReason(err))
		}
	}
	var ev Event
	var err error
	if ev.Type, err = decodeType(w.Type); err != nil {
		return Event{}, err
	}
	ev.Data = w.Data
	ev.EventAttributes = w.EventAttributes
	// The remaining fields are informative: a wrong type there is tolerated.
	_ = json.Unmarshal(w.Object, &ev.Object)
	_ = json.Unmarshal(w.InstanceID, &ev.InstanceID)
	if len(w.Timestamp) > 0 {
		var n json.Number
		if json.Unmarshal(w.Timestamp, &n) == nil {
			if i, err := n.Int64(); err == nil {
				ev.Timestamp = i
			} else if f, err := n.Float64(); err == nil {
				ev.Timestamp = int64(f)
			}
		}
	}
	return ev, nil
}

// EventType returns the type of the Clerk envelope body, accepting and
// refusing exactly what [ParseEvent] does, with the same errors, but without
// decoding or copying any other member: what the receiver needs before it
// stores the bytes unchanged. A valid body costs one pass and no
// allocation for a catalog type (one small one for another type).
func EventType(body []byte) (string, error) {
	s, fast := scanSpans(body)
	if !fast {
		ev, err := ParseEvent(body)
		return ev.Type, err
	}
	var raw []byte
	if s.found[fieldType] {
		raw = body[s.span[fieldType][0]:s.span[fieldType][1]]
	}
	return decodeType(raw)
}

// decodeType decodes and checks the raw "type" member of an envelope (nil
// when absent).
func decodeType(raw []byte) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%w: missing \"type\"", ErrInvalidEvent)
	}
	if !plainString(raw) {
		typ, ok := unmarshalString(raw)
		if !ok {
			return "", fmt.Errorf("%w: \"type\" is not a string", ErrInvalidEvent)
		}
		return checkType(typ)
	}
	// A catalog type is the catalog's string (no copy), already checked.
	if subject, ok := catalogSubjects[string(raw[1:len(raw)-1])]; ok {
		return subject[len(ClerkSubjectPrefix):], nil
	}
	return checkType(string(raw[1 : len(raw)-1]))
}

// unmarshalString decodes raw, a JSON value, as a string; on its own so
// that the string it decodes into escapes to the heap only on this path.
func unmarshalString(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// checkType checks a decoded event type as a subject's tokens.
func checkType(typ string) (string, error) {
	if err := ValidateSubjectTokens(typ); err != nil {
		return "", fmt.Errorf("%w: \"type\": %w", ErrInvalidEvent, err)
	}
	return typ, nil
}

// plainString reports whether raw, a valid JSON value, is a string of ASCII
// without escapes, which decodes to its bytes between the quotes.
func plainString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// jsonReason shortens a json error to a one-line reason without echoing input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}
