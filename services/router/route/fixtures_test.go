package route

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

// fixture reads testdata/events/<name>.json, a full Clerk envelope.
func fixture(t testing.TB, name string) (events.Event, []byte) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "events", name+".json"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	ev, err := events.ParseEvent(body)
	if err != nil {
		t.Fatalf("parse fixture %s: %v", name, err)
	}
	return ev, body
}

// fixtureNames lists every fixture in testdata/events.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)[:len(filepath.Base(f))-len(".json")]
	}
	return names
}

// catalog is Clerk's event catalog; a type missing from what this test
// covers fails it.
var catalog = events.Catalog()

// TestFixturesCoverEveryFamily keeps the fixtures honest: every family of the
// catalog has at least one.
func TestFixturesCoverEveryFamily(t *testing.T) {
	have := map[string]bool{}
	for _, n := range fixtureNames(t) {
		ev, _ := fixture(t, n)
		have[family(ev.Type)] = true
	}
	for _, typ := range catalog {
		if !have[family(typ)] {
			t.Errorf("no fixture for the %s family", family(typ))
		}
	}
}

func family(typ string) string {
	for i := 0; i < len(typ); i++ {
		if typ[i] == '.' {
			return typ[:i]
		}
	}
	return typ
}
