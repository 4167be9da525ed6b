package novu

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

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
// It is Novu's TriggerEventRequestDto built from the contract's own encoding
// ([events.AppendJSONString], [events.Subscriber.AppendJSON],
// [events.Topic.AppendJSON]); what is Novu's here is the field names, the
// topic's "type" discriminator and an absent or null payload sent as {},
// Novu's default. The payload bytes are copied unchanged (no re-encoding, no
// HTML escaping). The output is deterministic, so the same command always
// gives the same bytes, which Novu's idempotency check requires. cmd must
// have passed [events.TriggerCommand.Validate].
func AppendTrigger(dst []byte, cmd *events.TriggerCommand) []byte {
	dst = append(dst, `{"name":`...)
	dst = events.AppendJSONString(dst, cmd.WorkflowID)
	dst = append(dst, `,"to":`...)
	dst = appendRecipient(dst, cmd.To)
	dst = append(dst, `,"payload":`...)
	if p := cmd.Payload; len(p) == 0 || string(p) == "null" {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, p...)
	}
	dst = append(dst, `,"transactionId":`...)
	dst = events.AppendJSONString(dst, cmd.TransactionID)
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

// appendRecipient appends the "to" value of r: the subscriber as the contract
// encodes it (it is Novu's SubscriberPayloadDto), or the contract's topic with
// Novu's {"type":"Topic"} discriminator first.
func appendRecipient(dst []byte, r events.Recipient) []byte {
	switch {
	case r.Topic != nil:
		dst = append(dst, `{"type":"Topic",`...)
		n := len(dst)
		dst = r.Topic.AppendJSON(dst)        // {"topicKey":...}
		return append(dst[:n], dst[n+1:]...) // less the contract's own opening brace
	case r.Subscriber != nil:
		return r.Subscriber.AppendJSON(dst)
	}
	return append(dst, "null"...)
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
