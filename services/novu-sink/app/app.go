// Package app wires the novu-sink service: configuration from the
// environment, the NATS connection and durable consumer, the Novu client, the
// ops HTTP server, and an orderly shutdown. It is exported so the devstack,
// the full-stack test and the benchmark can run the sink in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/consume"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServiceName names the service in NATS connections, logs and traces.
const ServiceName = "novu-sink"

// shutdownShares split Config.ShutdownTimeout: the consume runtime (calls
// in flight finish and settle) gets all but a quarter, which is left for
// draining NATS and stopping the ops server.
func shutdownShares(total time.Duration) (consume, drain time.Duration) {
	drain = total / 4
	return total - drain, drain
}

// Deps are what Run uses besides the configuration. Zero fields get defaults.
type Deps struct {
	service.Deps
	// HTTPClient calls Novu (default: a keep-alive client tuned to
	// Config.Concurrency). Its transport is wrapped with otelhttp; set no
	// Timeout on it, Config.Timeout applies per request.
	HTTPClient *http.Client
}

// Run runs the sink until ctx is done: it connects to NATS, provisions the
// streams when cfg.NATS.Provision, creates or updates the durable consumer,
// serves /healthz, /readyz and /metrics, and consumes. On ctx done it stops
// fetching, lets the Novu calls in flight finish and settles their messages
// (kept alive meanwhile), gives back the rest, drains the NATS connection and
// stops the ops server, all within cfg.ShutdownTimeout. It returns nil after
// a clean shutdown and an error when it cannot start.
func Run(ctx context.Context, cfg Config, deps Deps) (err error) {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	deps.Deps = deps.Deps.WithDefaults()
	log := deps.Logger

	var notifier consume.Notifier
	if !cfg.DryRun {
		hc := deps.HTTPClient
		if hc == nil {
			hc = novu.NewHTTPClient(cfg.Concurrency, deps.Telemetry.TracerProvider, deps.Telemetry.Propagator)
		} else {
			hc = novu.Instrument(hc, deps.Telemetry.TracerProvider, deps.Telemetry.Propagator)
		}
		client, err := novu.New(novu.Config{BaseURL: cfg.APIURL, SecretKey: string(cfg.SecretKey), Timeout: cfg.Timeout, HTTPClient: hc})
		if err != nil {
			return err
		}
		defer client.CloseIdleConnections()
		notifier = client
	}

	consumeBudget, drainBudget := shutdownShares(cfg.ShutdownTimeout)
	nc, err := service.Connect(cfg.NATS, ServiceName, log)
	if err != nil {
		return err
	}
	defer func() {
		if derr := service.Drain(nc, drainBudget/2); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	sink, err := consume.New(consume.Config{
		Concurrency:     cfg.Concurrency,
		Bulk:            cfg.Bulk,
		BulkMin:         cfg.BulkMin,
		MaxDeliver:      cfg.MaxDeliver,
		RetryBase:       cfg.RetryBase,
		RetryMax:        cfg.RetryMax,
		BreakerFailures: cfg.BreakerFailures,
		BreakerOpen:     cfg.BreakerOpen,
		RateLimit:       cfg.RateLimit,
		AckWait:         cfg.AckWait,
		FetchWait:       cfg.FetchWait,
		ShutdownTimeout: consumeBudget,
		DryRun:          cfg.DryRun,
	}, consume.Deps{
		Logger:         log,
		TracerProvider: deps.Telemetry.TracerProvider,
		Propagator:     deps.Telemetry.Propagator,
		Registerer:     deps.Registry,
		Notifier:       notifier,
		Publisher:      js,
	})
	if err != nil {
		return err
	}
	if err := deps.Registry.Register(service.ConsumerCollector(js, events.StreamNovu, events.DurableSink)); err != nil {
		return fmt.Errorf("register consumer metrics: %w", err)
	}

	// Ops endpoints first, so /readyz tells why the sink is not consuming yet.
	mux := http.NewServeMux()
	service.RegisterOps(mux, deps.Registry, service.NATSCheck(nc, js, events.StreamNovu), sink.Check())
	srv := service.NewHTTPServer(cfg.Addr, mux)
	ln := deps.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen on SINK_ADDR %s: %w", cfg.Addr, err)
		}
	}
	srvErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srvErr <- err
		}
		close(srvErr)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), drainBudget/2)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if cfg.NATS.Provision {
		if err := service.UntilConnected(ctx, nc, log, "provision streams", func(ctx context.Context) error {
			return service.Provision(ctx, js, cfg.NATS.StreamOptions()...)
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	cons, err := createConsumer(ctx, nc, js, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	novu := cfg.APIURL
	if cfg.DryRun {
		novu = "none (dry run: triggers are logged, not sent)"
	}
	log.Info("novu-sink consuming", "stream", events.StreamNovu, "durable", events.DurableSink,
		"novu", novu, "bulk", cfg.Bulk, "concurrency", cfg.Concurrency,
		"rate_limit", cfg.RateLimit, "addr", ln.Addr().String())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- sink.Run(runCtx, cons) }()
	select {
	case err := <-srvErr:
		stop()
		<-done
		if err != nil {
			return fmt.Errorf("ops server: %w", err)
		}
		return nil
	case err := <-done:
		return err
	}
}

// createConsumer creates (or, without provisioning, finds) the durable
// consumer, waiting for NATS as long as ctx allows.
func createConsumer(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config, log *slog.Logger) (cons jetstream.Consumer, err error) {
	cc := events.ConsumerConfig(events.DurableSink, events.WithAckWait(cfg.AckWait),
		events.WithMaxDeliver(rt.ServerMaxDeliver(cfg.MaxDeliver)))
	err = service.UntilConnected(ctx, nc, log, "consumer "+events.DurableSink, func(ctx context.Context) (err error) {
		cons, err = service.DurableConsumer(ctx, js, events.StreamNovu, cc, cfg.NATS.Provision)
		return err
	})
	return cons, err
}
