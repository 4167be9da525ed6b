package service

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
)

// TestReadyzDoesNotCallJetStreamPerProbe: a flood of /readyz makes at most
// one stream lookup per StreamCheckInterval (4,284 unsigned calls/s reached
// the server when every probe made one).
func TestReadyzDoesNotCallJetStreamPerProbe(t *testing.T) {
	s := eventstest.RunServer(t)
	nc, js := eventstest.Connect(t, s.ClientURL())
	mux := http.NewServeMux()
	RegisterOps(mux, nil, NATSCheck(nc, js, events.StreamClerk))
	apiCalls := func() uint64 {
		info, err := js.AccountInfo(t.Context())
		if err != nil {
			t.Fatalf("account info: %v", err)
		}
		return info.API.Total
	}
	before := apiCalls()
	for i := range 200 {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("probe %d: %d %s", i, w.Code, w.Body)
		}
	}
	// One lookup, plus the AccountInfo calls of this test; a slow machine
	// may cross one interval boundary.
	if got := apiCalls() - before; got > 4 {
		t.Errorf("200 probes made %d JetStream API calls, want at most a few", got)
	}
}
