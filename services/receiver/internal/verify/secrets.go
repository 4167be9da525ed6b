package verify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretPrefix starts every Svix signing secret as shown by Clerk's dashboard.
// As in the Svix library, a secret without it is taken as bare base64.
const SecretPrefix = "whsec_"

// MinKeyBytes is the shortest signing key accepted, decoded: 16 bytes (128
// bits). Svix generates 24-byte keys; a shorter one (whsec_AA== is 1 byte) is
// a typo or a placeholder, and an HMAC key that short can be guessed.
const MinKeyBytes = 16

// ErrInvalidSecret reports a signing secret that cannot be used. Its message
// says which secret (by position) and why, never the secret.
var ErrInvalidSecret = errors.New("invalid signing secret")

// ParseSecrets splits s, the value of CLERK_WEBHOOK_SIGNING_SECRET, into
// secrets separated by commas and/or white space (several during a rotation),
// and checks each one as [New] does. It fails with an error wrapping
// [ErrInvalidSecret] when s holds no secret or a malformed one.
func ParseSecrets(s string) ([]string, error) {
	secrets := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secret given", ErrInvalidSecret)
	}
	for i, secret := range secrets {
		if _, err := decodeKey(secret); err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
	}
	return secrets, nil
}

// decodeKey returns the key of one secret, decoded as the Svix library does,
// refusing bad base64 and a key shorter than [MinKeyBytes] (the Svix library
// accepts any, even the empty key of a bare "whsec_").
func decodeKey(secret string) ([]byte, error) {
	encoded := strings.TrimPrefix(secret, SecretPrefix)
	if encoded == "" {
		return nil, fmt.Errorf("%w: empty key after the %s prefix", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The base64 error only tells a byte offset; keep it out anyway so no
		// part of the secret can ever be inferred from the message.
		return nil, fmt.Errorf("%w: not base64 after the %s prefix", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, want at least %d (copy the whole whsec_... secret from the Clerk dashboard)",
			ErrInvalidSecret, len(key), MinKeyBytes)
	}
	return key, nil
}
