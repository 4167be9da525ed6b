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
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/consume"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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

// Run runs the sink until ctx is done: it connects to NATS, ensures the
// streams and the durable consumer (see package provision),
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
	var syncNotifier consume.SyncNotifier
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
		notifier, syncNotifier = client, client
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

	sinkCfg := consume.Config{
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
	}
	sinkDeps := consume.Deps{
		Logger:         log,
		TracerProvider: deps.Telemetry.TracerProvider,
		Propagator:     deps.Telemetry.Propagator,
		Registerer:     deps.Registry,
		Notifier:       notifier,
		Publisher:      js,
	}
	sink, err := consume.New(sinkCfg, sinkDeps)
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
			return fmt.Errorf("listen on SINK_OPS_ADDR %s: %w", cfg.Addr, err)
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

	cons, err := createConsumer(ctx, nc, js, cfg, events.SinkConsumer(cfg.consumerOptions()...), nil, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var syncSink *consume.SyncSink
	var syncCons jetstream.Consumer
	if cfg.Sync {
		if syncSink, syncCons, err = startSync(ctx, nc, js, cfg, sinkCfg, sinkDeps, syncNotifier, deps.Registry); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
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
	done := make(chan error, 2)
	running := 1
	go func() { done <- sink.Run(runCtx, cons) }()
	if syncSink != nil {
		running++
		go func() { done <- syncSink.Run(runCtx, syncCons) }()
	}
	// Both runtimes stop together: when one ends, so does the other.
	wait := func(first error) error {
		stop()
		errs := []error{first}
		for range running - 1 {
			errs = append(errs, <-done)
		}
		return errors.Join(errs...)
	}
	select {
	case err := <-srvErr:
		stop()
		for range running {
			<-done
		}
		if err != nil {
			return fmt.Errorf("ops server: %w", err)
		}
		return nil
	case err := <-done:
		return wait(err)
	}
}

// startSync prepares the sync sink: the sync state bucket, the durable
// novu-sink-sync consumer and the sink with its configuration-category
// rate limit.
func startSync(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config, sinkCfg consume.Config,
	sinkDeps consume.Deps, notifier consume.SyncNotifier, reg *prometheus.Registry) (*consume.SyncSink, jetstream.Consumer, error) {
	log := sinkDeps.Logger
	kvCfg := events.SyncStateKV(cfg.NATS.StreamOptions()...)
	cons, err := createConsumer(ctx, nc, js, cfg, events.SinkSyncConsumer(cfg.consumerOptions()...),
		[]jetstream.KeyValueConfig{kvCfg}, log)
	if err != nil {
		return nil, nil, err
	}
	var kv jetstream.KeyValue
	if err := service.UntilConnected(ctx, nc, log, "bucket "+kvCfg.Bucket, func(ctx context.Context) (err error) {
		kv, err = js.KeyValue(ctx, kvCfg.Bucket)
		return err
	}); err != nil {
		return nil, nil, err
	}
	syncCfg := sinkCfg
	syncCfg.RateLimit = cfg.SyncRateLimit
	s, err := consume.NewSync(syncCfg, consume.SyncDeps{
		Deps:         sinkDeps,
		SyncNotifier: notifier,
		State:        kv,
		Owner:        strings.TrimPrefix(nats.NewInbox(), nats.InboxPrefix),
	})
	if err != nil {
		return nil, nil, err
	}
	if err := reg.Register(service.ConsumerCollector(js, events.StreamNovu, events.DurableSinkSync)); err != nil {
		return nil, nil, fmt.Errorf("register sync consumer metrics: %w", err)
	}
	log.Info("novu-sink syncing subscribers and topics", "durable", events.DurableSinkSync, "bucket", kvCfg.Bucket,
		"sync_rate_limit", cfg.SyncRateLimit)
	return s, cons, nil
}

// consumerOptions shape both of the sink's durable consumers.
func (c Config) consumerOptions() []events.ConsumerOption {
	return []events.ConsumerOption{events.WithAckWait(c.AckWait), events.WithMaxDeliver(rt.ServerMaxDeliver(c.MaxDeliver))}
}

// createConsumer ensures the streams the sink uses, the durable consumer c
// and the buckets (created when missing and NATS_PROVISION allows, never
// changed) and returns the consumer, waiting for NATS as long as ctx allows.
func createConsumer(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config, c events.Consumer,
	buckets []jetstream.KeyValueConfig, log *slog.Logger) (cons jetstream.Consumer, err error) {
	declared := events.Resources{
		Streams:   events.StreamConfigs(cfg.NATS.StreamOptions()...),
		Consumers: []events.Consumer{c},
		Buckets:   buckets,
	}.OnlyStreams(events.StreamNovu, events.StreamDLQ)
	err = service.UntilConnected(ctx, nc, log, "provision "+c.String(), func(ctx context.Context) (err error) {
		if err := provision.Ensure(ctx, js, declared, cfg.NATS.Provision, log); err != nil {
			return err
		}
		cons, err = js.Consumer(ctx, c.Stream, c.Config.Durable)
		return err
	})
	return cons, err
}
