package verify

import (
	"errors"
	"fmt"
	"strings"

	svix "github.com/svix/svix-webhooks/go"
)

// SecretPrefix starts every Svix signing secret as shown by Clerk's dashboard.
// As in the Svix library, a secret without it is taken as bare base64.
const SecretPrefix = "whsec_"

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
		if _, err := newWebhook(secret); err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
	}
	return secrets, nil
}

// newWebhook builds the Svix signer of one secret, refusing bad base64 and
// an empty key (which the Svix library would accept, e.g. a bare "whsec_").
func newWebhook(secret string) (*svix.Webhook, error) {
	key := strings.TrimPrefix(secret, SecretPrefix)
	if key == "" {
		return nil, fmt.Errorf("%w: empty key after the %s prefix", ErrInvalidSecret, SecretPrefix)
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		// The base64 error only tells a byte offset; keep it out anyway so no
		// part of the secret can ever be inferred from the message.
		return nil, fmt.Errorf("%w: not base64 after the %s prefix", ErrInvalidSecret, SecretPrefix)
	}
	return wh, nil
}
