package stack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Layered returns a getenv that answers from overrides first (a key present
// with "" reads as unset), then from env when it gives a non-empty value, then
// from defaults. env may be nil.
func Layered(overrides map[string]string, env func(string) string, defaults map[string]string) func(string) string {
	return func(key string) string {
		if v, ok := overrides[key]; ok {
			return v
		}
		if env != nil {
			if v := env(key); v != "" {
				return v
			}
		}
		return defaults[key]
	}
}

// SecretFileName is the file, in the devstack directory, that keeps the
// generated webhook signing secret; the send tool reads it.
const SecretFileName = "webhook-secret"

// SigningSecretEnv is the receiver's setting for the Svix signing secret.
const SigningSecretEnv = "CLERK_WEBHOOK_SIGNING_SECRET"

// NewSecret returns a Svix-style signing secret: "whsec_" and the standard
// base64 of 24 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate signing secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// LoadOrCreateSecret returns the secret kept in dir/[SecretFileName], creating
// the file (mode 0600) with a [NewSecret] when it does not exist, so a
// restarted devstack keeps verifying with the secret the send tool uses.
func LoadOrCreateSecret(dir string) (secret, path string, err error) {
	path = filepath.Join(dir, SecretFileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		secret = strings.TrimSpace(string(b))
		if !strings.HasPrefix(secret, "whsec_") {
			return "", path, fmt.Errorf("%s does not hold a whsec_ secret: delete it to get a new one", path)
		}
		return secret, path, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", path, fmt.Errorf("read signing secret: %w", err)
	}
	if secret, err = NewSecret(); err != nil {
		return "", path, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", path, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", path, fmt.Errorf("write signing secret: %w", err)
	}
	return secret, path, nil
}

// FakeNovuEnv is the environment that points the sink at a fake Novu
// (novufake) at url accepting key, with retries and fetches short enough for
// tests: the full-stack, permission and cluster tests share it.
func FakeNovuEnv(url, key string) map[string]string {
	return map[string]string{
		"NOVU_API_URL":    url,
		"NOVU_SECRET_KEY": key,
		"NOVU_DRY_RUN":    "false",
		"NOVU_RATE_LIMIT": "0",
		"NOVU_RETRY_BASE": "10ms",
		"NOVU_RETRY_MAX":  "100ms",
		"NOVU_FETCH_WAIT": "100ms",
	}
}

// SyncRulesFileName is the rules file devstack gives the router when
// ROUTES_FILE is not set, in the data directory: it turns sync on (every
// user mirrored as a Novu subscriber, every organization as a topic) over
// the built-in rules.
const SyncRulesFileName = "routes-sync.yaml"

// SyncRules is the content of [SyncRulesFileName].
const SyncRules = `# Written by devstack: mirror Clerk users and organizations into Novu,
# over the built-in rules. Set ROUTES_FILE to use your own rules instead.
sync:
  subscribers: true
  organizationTopics: "org-{organization_id}"
rules: []
`

// writeSyncRules writes [SyncRules] to dir (devstack's data directory) and returns its path.
func writeSyncRules(dir string) (string, error) {
	path := filepath.Join(dir, SyncRulesFileName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.WriteFile(path, []byte(SyncRules), 0o600); err != nil {
		return "", fmt.Errorf("write sync rules: %w", err)
	}
	return path, nil
}
