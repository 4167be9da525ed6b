package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tolerance is how far a delivery's timestamp may be from now, either way,
// as in the Svix libraries: it bounds replays of a captured delivery.
const Tolerance = 5 * time.Minute

// Verification errors. Each is safe to return to the caller.
var (
	// ErrMissingHeaders reports a request without the id, timestamp or
	// signature header (svix-* or webhook-*).
	ErrMissingHeaders = errors.New("missing signature headers")
	// ErrInvalidTimestamp reports a timestamp header that is not Unix seconds.
	ErrInvalidTimestamp = errors.New("invalid timestamp header")
	// ErrTimestampTooOld reports a timestamp more than [Tolerance] in the past.
	ErrTimestampTooOld = errors.New("timestamp too old")
	// ErrTimestampTooNew reports a timestamp more than [Tolerance] in the future.
	ErrTimestampTooNew = errors.New("timestamp too new")
	// ErrNoMatchingSignature reports that no v1 signature of the request
	// matches the body under any configured secret.
	ErrNoMatchingSignature = errors.New("no matching signature")
	// ErrHeaderTooLong reports an id, timestamp or signature header longer
	// than Svix ever sends ([MaxIDBytes], [MaxTimestampBytes],
	// [MaxSignatureBytes]): a malformed request, not a bad signature.
	ErrHeaderTooLong = errors.New("signature header too long")
)

// Bounds of the signature headers, far above what Svix sends: an id is
// "msg_" and 27 characters; a timestamp is 10 digits; a signature is
// "v1,<44 base64 characters>", space-separated, a few during a rotation.
const (
	// MaxIDBytes bounds the id header (it becomes the Nats-Msg-Id).
	MaxIDBytes = 256
	// MaxTimestampBytes bounds the timestamp header.
	MaxTimestampBytes = 32
	// MaxSignatureBytes bounds the signature header: about 40 signatures.
	MaxSignatureBytes = 2048
)

// Headers are the three signature headers of a delivery, read by the
// transport from svix-id, svix-timestamp and svix-signature, or from their
// webhook-* equivalents (Standard Webhooks names).
type Headers struct {
	// ID is the message id, stable across Svix's retries.
	ID string
	// Timestamp is the delivery attempt's time in Unix seconds, as sent.
	Timestamp string
	// Signature is a space-separated list of "<version>,<base64>" signatures.
	Signature string
}

// Verifier verifies deliveries against one or more signing secrets.
// It is safe for concurrent use.
type Verifier struct {
	signers []*signer
}

// signer computes v1 signatures under one key: HMAC-SHA256 of
// "<id>.<timestamp>.<body>", base64, as the Svix library's Sign does. It is
// hand-written because Sign builds that string with fmt.Sprintf, copying the
// whole body through fmt on every request (about half of verification's
// cost); the fixture tests check it against the library's signatures.
type signer struct {
	macs sync.Pool // *macState keyed with the secret
}

// macState is one pooled HMAC with its scratch space: writing strings and
// taking the sum through the hash.Hash interface would allocate each time.
type macState struct {
	mac hash.Hash
	buf []byte // "<id>.<timestamp>." then the sum; at most MaxIDBytes + MaxTimestampBytes + 2
}

func newSigner(key []byte) *signer {
	return &signer{macs: sync.Pool{New: func() any { return &macState{mac: hmac.New(sha256.New, key)} }}}
}

// sign appends the base64 signature of id, ts and body to dst.
func (s *signer) sign(dst []byte, id, ts string, body []byte) []byte {
	st := s.macs.Get().(*macState)
	defer s.macs.Put(st)
	st.mac.Reset()
	st.buf = append(append(append(append(st.buf[:0], id...), '.'), ts...), '.')
	_, _ = st.mac.Write(st.buf)
	_, _ = st.mac.Write(body)
	st.buf = st.mac.Sum(st.buf[:0])
	return base64.StdEncoding.AppendEncode(dst, st.buf)
}

// New returns a [Verifier] accepting a signature made with any of secrets
// (whsec_<base64>, or bare base64 as the Svix library accepts). It fails with
// an error wrapping [ErrInvalidSecret] when secrets is empty or one is malformed.
func New(secrets []string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secret given", ErrInvalidSecret)
	}
	v := &Verifier{signers: make([]*signer, 0, len(secrets))}
	for i, secret := range secrets {
		key, err := decodeKey(secret)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
		v.signers = append(v.signers, newSigner(key))
	}
	return v, nil
}

// Check checks what can be checked of a delivery before its body is read:
// the three headers are present and within their bounds, and the timestamp
// is within [Tolerance] of now. It returns the timestamp, or an error
// wrapping [ErrMissingHeaders], [ErrHeaderTooLong], [ErrInvalidTimestamp],
// [ErrTimestampTooOld] or [ErrTimestampTooNew].
func Check(h Headers, now time.Time) (time.Time, error) {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return time.Time{}, fmt.Errorf("%w: %s", ErrMissingHeaders, missing(h))
	}
	switch {
	case len(h.ID) > MaxIDBytes:
		return time.Time{}, fmt.Errorf("%w: id is %d bytes, at most %d", ErrHeaderTooLong, len(h.ID), MaxIDBytes)
	case len(h.Timestamp) > MaxTimestampBytes:
		return time.Time{}, fmt.Errorf("%w: timestamp is %d bytes, at most %d", ErrHeaderTooLong, len(h.Timestamp), MaxTimestampBytes)
	case len(h.Signature) > MaxSignatureBytes:
		return time.Time{}, fmt.Errorf("%w: signature is %d bytes, at most %d", ErrHeaderTooLong, len(h.Signature), MaxSignatureBytes)
	}
	sec, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: want Unix seconds", ErrInvalidTimestamp)
	}
	ts := time.Unix(sec, 0)
	if age := now.Sub(ts); age > Tolerance {
		return time.Time{}, fmt.Errorf("%w: %s old, more than %s", ErrTimestampTooOld, age.Truncate(time.Second), Tolerance)
	}
	if ts.Unix() > now.Add(Tolerance).Unix() {
		return time.Time{}, fmt.Errorf("%w: %s ahead, more than %s", ErrTimestampTooNew, ts.Sub(now).Truncate(time.Second), Tolerance)
	}
	return ts, nil
}

// Verify checks that body, exactly as received, was signed for h at a time
// within [Tolerance] of now ([Check] first). Only v1 signatures count; other
// versions (such as the asymmetric v1a) are ignored. It returns nil or an
// error wrapping one of the sentinel errors of this package.
func (v *Verifier) Verify(h Headers, body []byte, now time.Time) error {
	ts, err := Check(h, now)
	if err != nil {
		return err
	}
	return v.VerifyChecked(h, ts, body)
}

// VerifyChecked is [Verifier.Verify] for headers that already passed
// [Check], which returned ts: a caller that refuses bad headers before it
// reads the body does not check them twice.
func (v *Verifier) VerifyChecked(h Headers, ts time.Time, body []byte) error {
	// The timestamp signed is the parsed one, as the Svix library signs it.
	var tsBuf, wantBuf [64]byte
	tsText := strconv.AppendInt(tsBuf[:0], ts.Unix(), 10)
	for _, s := range v.signers {
		if matchV1(h.Signature, s.sign(wantBuf[:0], h.ID, string(tsText), body)) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}

// matchV1 reports whether one of the space-separated "v1,<sig>" entries of
// passed equals want, comparing in constant time. It splits the entries as
// the Svix library does. Each candidate of want's length is copied to the
// stack for the comparison: converting the whole header would allocate it.
func matchV1(passed string, want []byte) bool {
	var sig [64]byte // holds a v1 signature: base64 of 32 bytes is 44
	for len(passed) > 0 {
		var entry string
		entry, passed, _ = strings.Cut(passed, " ")
		version, rest, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		// A length differs in the clear anyway (subtle.ConstantTimeCompare).
		if s, _, _ := strings.Cut(rest, ","); len(s) == len(want) && hmac.Equal(append(sig[:0], s...), want) {
			return true
		}
	}
	return false
}

func missing(h Headers) string {
	var names []string
	if h.ID == "" {
		names = append(names, "id")
	}
	if h.Timestamp == "" {
		names = append(names, "timestamp")
	}
	if h.Signature == "" {
		names = append(names, "signature")
	}
	return strings.Join(names, ", ")
}

// Canonical names of the signature headers. Svix sends the svix-* set; the
// Standard Webhooks names (webhook-*) are accepted too.
const (
	// SvixIDHeader is svix-id: the message id.
	SvixIDHeader = "Svix-Id"
	// SvixTimestampHeader is svix-timestamp: the attempt's Unix seconds.
	SvixTimestampHeader = "Svix-Timestamp"
	// SvixSignatureHeader is svix-signature: space-separated "v1,<base64>" entries.
	SvixSignatureHeader = "Svix-Signature"
	// WebhookIDHeader is webhook-id, the Standard Webhooks name of svix-id.
	WebhookIDHeader = "Webhook-Id"
	// WebhookTimestampHeader is webhook-timestamp, the Standard Webhooks name of svix-timestamp.
	WebhookTimestampHeader = "Webhook-Timestamp"
	// WebhookSignatureHeader is webhook-signature, the Standard Webhooks name of svix-signature.
	WebhookSignatureHeader = "Webhook-Signature"
)

// HeadersFrom reads the signature headers through get (http.Header.Get in
// the transport). Like the Svix library it uses the svix-* set when all three
// are present, else the webhook-* set when all three are; otherwise it returns
// the partial set the sender used, so [Verifier.Verify] names what is missing.
func HeadersFrom(get func(name string) string) Headers {
	s := Headers{ID: get(SvixIDHeader), Timestamp: get(SvixTimestampHeader), Signature: get(SvixSignatureHeader)}
	if s.ID != "" && s.Timestamp != "" && s.Signature != "" {
		return s
	}
	w := Headers{ID: get(WebhookIDHeader), Timestamp: get(WebhookTimestampHeader), Signature: get(WebhookSignatureHeader)}
	if w.ID != "" && w.Timestamp != "" && w.Signature != "" {
		return w
	}
	if s != (Headers{}) || w == (Headers{}) {
		return s
	}
	return w
}
