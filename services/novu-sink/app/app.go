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

	res, err := provisionAll(ctx, nc, js, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var syncSink *consume.SyncSink
	if cfg.Sync {
		if syncSink, err = startSync(js, cfg, sinkCfg, sinkDeps, syncNotifier, res.syncState); err != nil {
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
	go func() { done <- sink.Run(runCtx, res.cons) }()
	if syncSink != nil {
		running++
		go func() { done <- syncSink.Run(runCtx, res.syncCons) }()
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

// startSync prepares the sync sink over the sync state bucket kv, with its
// configuration-category rate limit.
func startSync(js jetstream.JetStream, cfg Config, sinkCfg consume.Config, sinkDeps consume.Deps,
	notifier consume.SyncNotifier, kv jetstream.KeyValue) (*consume.SyncSink, error) {
	syncCfg := sinkCfg
	syncCfg.RateLimit = cfg.SyncRateLimit
	s, err := consume.NewSync(syncCfg, consume.SyncDeps{
		Deps:         sinkDeps,
		SyncNotifier: notifier,
		State:        kv,
		Owner:        strings.TrimPrefix(nats.NewInbox(), nats.InboxPrefix),
	})
	if err != nil {
		return nil, err
	}
	if err := sinkDeps.Registerer.Register(service.ConsumerCollector(js, events.StreamNovu, events.DurableSinkSync)); err != nil {
		return nil, fmt.Errorf("register sync consumer metrics: %w", err)
	}
	sinkDeps.Logger.Info("novu-sink syncing subscribers and topics", "durable", events.DurableSinkSync, "bucket", kv.Bucket(),
		"sync_rate_limit", cfg.SyncRateLimit)
	return s, nil
}

// consumerOptions shape both of the sink's durable consumers.
func (c Config) consumerOptions() []events.ConsumerOption {
	return []events.ConsumerOption{events.WithAckWait(c.AckWait), events.WithMaxDeliver(rt.ServerMaxDeliver(c.MaxDeliver))}
}

// resources are what the sink consumes from, looked up after provisioning.
type resources struct {
	cons jetstream.Consumer
	// syncCons and syncState are the sync consumer and its state bucket,
	// only with Config.Sync.
	syncCons  jetstream.Consumer
	syncState jetstream.KeyValue
}

// provisionAll ensures, in one pass, the streams the sink uses, its durable
// consumers and the sync state bucket (the sync ones only with cfg.Sync;
// created when missing and NATS_PROVISION allows, buckets never changed),
// then looks them up, waiting for NATS as long as ctx allows.
func provisionAll(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config, log *slog.Logger) (res resources, err error) {
	sinkCons := events.SinkConsumer(cfg.consumerOptions()...)
	syncCons := events.SinkSyncConsumer(cfg.consumerOptions()...)
	kvCfg := events.SyncStateKV(cfg.NATS.StreamOptions()...)
	declared := events.Resources{
		Streams:   events.StreamConfigs(cfg.NATS.StreamOptions()...),
		Consumers: []events.Consumer{sinkCons},
	}
	if cfg.Sync {
		declared.Consumers = append(declared.Consumers, syncCons)
		declared.Buckets = []jetstream.KeyValueConfig{kvCfg}
	}
	declared = declared.OnlyStreams(events.StreamNovu, events.StreamDLQ)
	err = service.UntilConnected(ctx, nc, log, "provision", func(ctx context.Context) (err error) {
		if err := provision.Ensure(ctx, js, declared, cfg.NATS.Provision, log); err != nil {
			return err
		}
		if res.cons, err = js.Consumer(ctx, sinkCons.Stream, sinkCons.Config.Durable); err != nil {
			return err
		}
		if !cfg.Sync {
			return nil
		}
		if res.syncCons, err = js.Consumer(ctx, syncCons.Stream, syncCons.Config.Durable); err != nil {
			return err
		}
		res.syncState, err = js.KeyValue(ctx, kvCfg.Bucket)
		return err
	})
	return res, err
}
