package samples

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// Svix's header names, as [Sign] returns them. Svix also accepts the same
// headers prefixed webhook- instead of svix- (Standard Webhooks).
const (
	// IDHeader is the message id, stable across retries.
	IDHeader = "svix-id"
	// TimestampHeader is the Unix time, in seconds, of this delivery attempt.
	TimestampHeader = "svix-timestamp"
	// SignatureHeader is "v1," plus the base64 HMAC-SHA256 of id.timestamp.body.
	SignatureHeader = "svix-signature"
)

// ErrInvalidSecret reports a signing secret Svix would not accept.
var ErrInvalidSecret = errors.New("invalid signing secret")

// Sign returns the svix-id, svix-timestamp and svix-signature headers Svix
// would send with body for the endpoint secret (whsec_ plus base64), computed
// by the Svix library itself. The secret never appears in an error.
func Sign(secret, svixID string, ts time.Time, body []byte) (map[string]string, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	if svixID == "" {
		return nil, errors.New("sign: empty svix-id")
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("%w: want whsec_ followed by base64", ErrInvalidSecret)
	}
	sig, err := wh.Sign(svixID, ts, body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return map[string]string{
		IDHeader:        svixID,
		TimestampHeader: strconv.FormatInt(ts.Unix(), 10),
		SignatureHeader: sig,
	}, nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSvixID returns a fresh message id shaped like Svix's: "msg_" followed by
// 27 random base62 characters.
func NewSvixID() string {
	out := make([]byte, 0, 4+27)
	out = append(out, "msg_"...)
	var buf [64]byte
	for len(out) < cap(out) {
		rand.Read(buf[:]) // never fails (crypto/rand crashes the program instead)
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character equally likely.
			if b < 248 && len(out) < cap(out) {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}
