package app

import (
	"net/http"
	"net/http/pprof"
)

// registerPprof adds net/http/pprof under /debug/pprof/ to the ops mux
// (RECEIVER_PPROF=true): never on the webhook port.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
