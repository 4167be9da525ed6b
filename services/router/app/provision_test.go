package app

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
)

// A router configured with a shorter duplicate window than the existing
// CLERK stream's must not shrink it (that would let a Svix retry through as
// a second event): it warns, naming the fix, and leaves the stream alone.
func TestRunNeverShrinksAnExistingDuplicateWindow(t *testing.T) {
	s := eventstest.RunServer(t) // CLERK with the default 36 h window
	_, js := eventstest.Connect(t, s.ClientURL())
	cfg := testConfig(s.ClientURL())
	env, err := LoadConfig(func(k string) string {
		return map[string]string{"STREAM_DUPLICATE_WINDOW": "2m"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.DuplicateWindow = env.NATS.DuplicateWindow
	var logs eventstest.SyncBuffer
	r := runRouterWith(t, cfg, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r.waitReady(t)

	st, err := js.Stream(t.Context(), events.StreamClerk)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Duplicates; got != 36*time.Hour {
		t.Errorf("CLERK duplicate window %v after the router started, want 36h0m0s", got)
	}
	want := "stream CLERK: duplicate window is 36h0m0s on the server, 2m0s configured; run clerknovu provision to apply"
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Errorf("warning %q logged %d times, want once; logs:\n%s", want, n, logs.String())
	}
}
