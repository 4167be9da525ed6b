package stack

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayered(t *testing.T) {
	env := map[string]string{"A": "env", "B": "env", "C": ""}
	get := Layered(map[string]string{"A": "override", "D": ""}, func(k string) string { return env[k] },
		map[string]string{"A": "default", "B": "default", "C": "default", "D": "default", "E": "default"})
	tests := []struct{ key, want string }{
		{"A", "override"}, // overrides win
		{"B", "env"},      // then the environment
		{"C", "default"},  // an empty variable reads as unset
		{"D", ""},         // an override to "" unsets
		{"E", "default"},
		{"F", ""},
	}
	for _, tt := range tests {
		if got := get(tt.key); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := Layered(nil, nil, nil)("A"); got != "" {
		t.Errorf("empty layers: %q", got)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s1, path, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(s1, "whsec_")
	if b, err := base64.StdEncoding.DecodeString(raw); !ok || err != nil || len(b) != 24 {
		t.Fatalf("secret %q: want whsec_ and the base64 of 24 bytes", s1)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file %s: %v, mode %v", path, err, fi.Mode())
	}
	s2, _, err := LoadOrCreateSecret(dir)
	if err != nil || s2 != s1 {
		t.Fatalf("second load: %q, %v; want the same secret", s2, err)
	}
	if err := os.WriteFile(path, []byte("not a secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSecret(dir); err == nil || strings.Contains(err.Error(), "not a secret") {
		t.Fatalf("bad file: err = %v, want an error that does not echo the content", err)
	}
}
