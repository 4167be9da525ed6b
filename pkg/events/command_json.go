package events

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// EncodeCommand returns the JSON body of c, the bytes [ParseCommand] decodes:
// the fields in declaration order under their json tags, empty subscriber
// fields and zero timestamps omitted, subscriber data keys sorted (so the same
// command always gives the same bytes), and the payload copied byte for byte
// (no re-encoding, no HTML escaping). It fails with [ErrInvalidCommand] when
// the payload is not one JSON value; an absent payload is encoded as null.
func EncodeCommand(c TriggerCommand) ([]byte, error) {
	if len(c.Payload) > 0 && !validJSON(c.Payload) {
		return nil, fmt.Errorf("%w: %s payload is not valid JSON", ErrInvalidCommand, c.WorkflowID)
	}
	dst := make([]byte, 0, c.sizeHint())
	dst = append(dst, `{"workflowId":`...)
	dst = AppendJSONString(dst, c.WorkflowID)
	dst = append(dst, `,"to":`...)
	dst = c.To.AppendJSON(dst)
	dst = append(dst, `,"payload":`...)
	if len(c.Payload) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, c.Payload...)
	}
	dst = append(dst, `,"transactionId":`...)
	dst = AppendJSONString(dst, c.TransactionID)
	dst = append(dst, `,"svixId":`...)
	dst = AppendJSONString(dst, c.SvixID)
	dst = append(dst, `,"eventType":`...)
	dst = AppendJSONString(dst, c.EventType)
	if c.EventTimestamp != 0 {
		dst = append(dst, `,"eventTimestamp":`...)
		dst = strconv.AppendInt(dst, c.EventTimestamp, 10)
	}
	if c.ReceivedAt != 0 {
		dst = append(dst, `,"receivedAt":`...)
		dst = strconv.AppendInt(dst, c.ReceivedAt, 10)
	}
	return append(dst, '}'), nil
}

// sizeHint is about the length of c's JSON form, so that [EncodeCommand]
// allocates once: the field names plus the values, with a margin for escapes.
func (c *TriggerCommand) sizeHint() int {
	n := 200 + len(c.Payload) + len(c.WorkflowID) + len(c.TransactionID) + len(c.SvixID) + len(c.EventType)
	if s := c.To.Subscriber; s != nil {
		n += 128 + len(s.SubscriberID) + len(s.FirstName) + len(s.LastName) + len(s.Email) + len(s.Phone) +
			len(s.Avatar) + len(s.Locale) + len(s.Timezone)
		for k, v := range s.Data {
			n += 8 + len(k) + len(v)
		}
	}
	if t := c.To.Topic; t != nil {
		n += 48 + len(t.TopicKey)
		for _, e := range t.Exclude {
			n += 4 + len(e)
		}
	}
	return n
}

// AppendJSON appends r as JSON to dst: {"subscriber":{...}} or {"topic":{...}}.
func (r Recipient) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if r.Subscriber != nil {
		dst = append(dst, `"subscriber":`...)
		dst = r.Subscriber.AppendJSON(dst)
	}
	if r.Topic != nil {
		if r.Subscriber != nil {
			dst = append(dst, ',')
		}
		dst = append(dst, `"topic":`...)
		dst = r.Topic.AppendJSON(dst)
	}
	return append(dst, '}')
}

// AppendJSON appends s as JSON to dst, Novu's SubscriberPayloadDto:
// subscriberId always, the other fields only when set, data keys sorted.
func (s *Subscriber) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"subscriberId":`...)
	dst = AppendJSONString(dst, s.SubscriberID)
	for _, f := range s.ProfileFields() {
		if f.Value != "" {
			dst = append(dst, f.Key...)
			dst = AppendJSONString(dst, f.Value)
		}
	}
	if len(s.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = AppendJSONStringMap(dst, s.Data)
	}
	return append(dst, '}')
}

// ProfileField is one of a subscriber's profile fields on the wire: Key is
// its JSON name with the comma before and the colon after it
// (`,"firstName":`), ready to append.
type ProfileField struct{ Key, Value string }

// ProfileFields lists s's profile fields in wire order, the timezone last.
func (s *Subscriber) ProfileFields() [7]ProfileField {
	return [...]ProfileField{
		{`,"firstName":`, s.FirstName},
		{`,"lastName":`, s.LastName},
		{`,"email":`, s.Email},
		{`,"phone":`, s.Phone},
		{`,"avatar":`, s.Avatar},
		{`,"locale":`, s.Locale},
		{`,"timezone":`, s.Timezone},
	}
}

// AppendJSONStringMap appends m as a JSON object, keys sorted, so the same
// map always gives the same bytes.
func AppendJSONStringMap(dst []byte, m map[string]string) []byte {
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = AppendJSONString(dst, m[k])
	}
	return append(dst, '}')
}

// AppendJSON appends t as JSON to dst: {"topicKey":...} plus "exclude" when set.
func (t *Topic) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"topicKey":`...)
	dst = AppendJSONString(dst, t.TopicKey)
	if len(t.Exclude) > 0 {
		dst = append(dst, `,"exclude":[`...)
		for i, e := range t.Exclude {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, e)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string to dst: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and
// U+2028/U+2029 escaped, as encoding/json does; HTML characters ('<', '>',
// '&') are left alone, as with [encoding/json.Encoder.SetEscapeHTML](false).
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
