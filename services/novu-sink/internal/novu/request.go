package novu

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/clerknovu/pipeline/pkg/events"
)

// MaxBulkEvents is the most events Novu takes in one bulk call.
const MaxBulkEvents = 100

// MaxIdempotencyKeyLen is the longest Idempotency-Key Novu accepts; a longer one is a 400.
const MaxIdempotencyKeyLen = 255

// AppendTrigger appends the body of the trigger of cmd to dst:
//
//	{"name":<workflowId>,"to":<recipient>,"payload":<payload>,"transactionId":<id>}
//
// The payload bytes are copied unchanged (no re-encoding, no HTML escaping);
// an absent or null payload becomes {}, Novu's default. A subscriber recipient
// is a SubscriberPayloadDto object; a topic is {"type":"Topic","topicKey":...}.
// The output is deterministic (subscriber data keys sorted), so the same
// command always gives the same bytes, which Novu's idempotency check requires.
// cmd must have passed [events.TriggerCommand.Validate].
func AppendTrigger(dst []byte, cmd *events.TriggerCommand) []byte {
	dst = append(dst, `{"name":`...)
	dst = appendString(dst, cmd.WorkflowID)
	dst = append(dst, `,"to":`...)
	dst = appendRecipient(dst, cmd.To)
	dst = append(dst, `,"payload":`...)
	if p := cmd.Payload; len(p) == 0 || string(p) == "null" {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, p...)
	}
	dst = append(dst, `,"transactionId":`...)
	dst = appendString(dst, cmd.TransactionID)
	return append(dst, '}')
}

// AppendBulk appends the body of a bulk trigger of cmds: {"events":[...]}.
func AppendBulk(dst []byte, cmds []*events.TriggerCommand) []byte {
	dst = append(dst, `{"events":[`...)
	for i, c := range cmds {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendTrigger(dst, c)
	}
	return append(dst, "]}"...)
}

// appendRecipient appends the "to" value of r.
func appendRecipient(dst []byte, r events.Recipient) []byte {
	if t := r.Topic; t != nil {
		dst = append(dst, `{"type":"Topic","topicKey":`...)
		dst = appendString(dst, t.TopicKey)
		if len(t.Exclude) > 0 {
			dst = append(dst, `,"exclude":[`...)
			for i, e := range t.Exclude {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, e)
			}
			dst = append(dst, ']')
		}
		return append(dst, '}')
	}
	s := r.Subscriber
	if s == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, `{"subscriberId":`...)
	dst = appendString(dst, s.SubscriberID)
	for _, f := range profileFields(s) {
		if f.val != "" {
			dst = append(dst, f.key...)
			dst = appendString(dst, f.val)
		}
	}
	if len(s.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = appendStringMap(dst, s.Data)
	}
	return append(dst, '}')
}

// profileField is one SubscriberPayloadDto field: its key (with the comma
// and colon around it) and value.
type profileField struct{ key, val string }

// profileFields lists s's profile fields in wire order; the timezone is last.
func profileFields(s *events.Subscriber) [7]profileField {
	return [...]profileField{
		{`,"firstName":`, s.FirstName},
		{`,"lastName":`, s.LastName},
		{`,"email":`, s.Email},
		{`,"phone":`, s.Phone},
		{`,"avatar":`, s.Avatar},
		{`,"locale":`, s.Locale},
		{`,"timezone":`, s.Timezone},
	}
}

// appendStringMap appends m as a JSON object, keys sorted so that the same
// map always gives the same bytes.
func appendStringMap(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028/U+2029
// escaped as encoding/json does. HTML characters are left alone.
func appendString(dst []byte, s string) []byte {
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

// IdempotencyKey derives the Idempotency-Key of a call from base (the
// transactionId of a single trigger, [BulkKey] of a bulk call). Attempt 0 is
// base itself, the same on every retry. After Novu replayed a cached error for
// a key (Idempotency-Replay: true), that key is spent, and the caller moves to
// attempt 1, 2...: base plus "-<attempt>". A key that would pass
// [MaxIdempotencyKeyLen] is replaced by a hash of base, so it stays stable.
func IdempotencyKey(base string, attempt int) string {
	suffix := ""
	if attempt > 0 {
		suffix = "-" + strconv.Itoa(attempt)
	}
	if len(base)+len(suffix) > MaxIdempotencyKeyLen {
		sum := sha256.Sum256([]byte(base))
		base = "key_" + hex.EncodeToString(sum[:16])
	}
	return base + suffix
}

// BulkKey is the base Idempotency-Key of a bulk call carrying txIDs, in order:
// the same events in the same order (the same body) give the same key.
func BulkKey(txIDs []string) string {
	h := sha256.New()
	for _, id := range txIDs {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return "bulk_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
