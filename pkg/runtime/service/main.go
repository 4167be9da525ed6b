package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what a service's Run takes from its caller besides its Config.
// Zero fields get defaults ([Deps.WithDefaults]), so tests pass only what they
// need and devstack passes a shared registry and listeners on port 0.
type Deps struct {
	// Logger receives the service's logs (default: discarded).
	Logger *slog.Logger
	// Telemetry traces (default: [NoTelemetry]). Run does not shut it down:
	// the caller does, after Run returns, so the spans of drained messages are flushed.
	Telemetry Telemetry
	// Registry receives the service's metrics and is served on /metrics
	// (default: [NewRegistry]).
	Registry *prometheus.Registry
	// Listener, when set, is served instead of listening on the configured
	// address (tests and devstack pass 127.0.0.1:0). Run closes it.
	Listener net.Listener
}

// WithDefaults returns d with its zero fields filled.
func (d Deps) WithDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	none := NoTelemetry()
	if d.Telemetry.TracerProvider == nil {
		d.Telemetry.TracerProvider = none.TracerProvider
	}
	if d.Telemetry.Propagator == nil {
		d.Telemetry.Propagator = none.Propagator
	}
	if d.Telemetry.Shutdown == nil {
		d.Telemetry.Shutdown = none.Shutdown
	}
	if d.Registry == nil {
		d.Registry = NewRegistry()
	}
	return d
}

// Main is the whole of a service's main: it loads the configuration from the
// environment, builds the logger and the tracing, and runs the service until
// SIGINT or SIGTERM, then flushes the spans. It returns the exit code: 0 after
// a clean shutdown, 2 when the configuration is wrong (one line on stderr
// saying what to fix), 1 when the service fails.
func Main[C any](name string, load func(getenv func(string) string) (C, error), logConfig func(C) LogConfig, run func(context.Context, C, Deps) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := load(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, OneLine(err))
		return 2
	}
	log := NewLogger(os.Stdout, logConfig(cfg))
	tel, err := SetupTelemetry(ctx, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, OneLine(err))
		return 2
	}
	err = run(ctx, cfg, Deps{Logger: log, Telemetry: tel})
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := tel.Shutdown(sctx); serr != nil {
		log.Warn("telemetry shutdown", "err", serr.Error())
	}
	if err != nil {
		log.Error(name+" stopped", "err", OneLine(err))
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, OneLine(err))
		return 1
	}
	return 0
}
