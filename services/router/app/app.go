// Package app wires the router: it reads Clerk events from stream CLERK
// (durable consumer "router", shared by every instance), routes each one with
// the rules in force (built-in defaults, ROUTES_FILE, and the ROUTES_KV_BUCKET
// value, watched live), and publishes one Novu trigger command per workflow on
// novu.trigger.<workflowId> in stream NOVU. It serves /healthz, /readyz and
// /metrics. [Run] is what main calls, and what the devstack and the full-stack
// tests embed.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/clerknovu/pipeline/pkg/events"
	rtconsume "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/router/internal/consume"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/clerknovu/pipeline/services/router/rulesource"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServiceName names the router in NATS connections, logs and traces.
const ServiceName = "router"

// Deps are what [Run] takes from its caller; zero fields get defaults.
type Deps = service.Deps

// Run runs the router until ctx is done, then drains: it stops pulling,
// finishes the events in flight, stops watching the rules, drains the NATS
// connection and stops the HTTP server. It returns nil on a clean shutdown,
// and an error when it cannot start (bad configuration, an invalid rules
// file, a port in use). While NATS is unreachable it keeps trying, serving
// /readyz as not ready.
func Run(ctx context.Context, cfg Config, deps Deps) (err error) {
	if deps.Listener != nil {
		defer deps.Listener.Close() // already closed by the HTTP server's shutdown, unless Run fails first
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	deps = deps.WithDefaults()
	log := deps.Logger

	reloads := rulesource.NewReloadsCounter()
	layers := []route.Layer{route.Defaults()}
	if cfg.RoutesFile != "" {
		l, err := loadRulesFile(cfg.RoutesFile)
		if err != nil {
			return fmt.Errorf("ROUTES_FILE: %w", err)
		}
		layers = append(layers, l)
		reloads.WithLabelValues(rulesource.SourceFile, rulesource.ResultOK).Inc()
	}
	src, err := rulesource.New(log, reloads, layers...)
	if err != nil {
		return err
	}

	nc, err := service.Connect(cfg.NATS, ServiceName, log)
	if err != nil {
		return err
	}
	defer func() {
		if !nc.IsClosed() {
			nc.Close()
		}
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	metrics := consume.NewMetrics()
	collectors := append(metrics.Collectors(), reloads, service.ConsumerCollector(js, events.StreamClerk, events.DurableRouter))
	for i, c := range collectors {
		if err := deps.Registry.Register(c); err != nil {
			for _, r := range collectors[:i] {
				deps.Registry.Unregister(r)
			}
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	defer func() {
		for _, c := range collectors {
			deps.Registry.Unregister(c)
		}
	}()

	var consuming atomic.Bool
	mux := http.NewServeMux()
	service.RegisterOps(mux, deps.Registry, service.NATSCheck(nc, js, events.StreamClerk), service.Check{
		Name: "rules",
		Func: func(context.Context) (string, error) {
			switch {
			case !src.Loaded():
				return src.Status(), errors.New("rules not loaded yet")
			case !consuming.Load():
				return src.Status(), errors.New("not consuming: starting or draining")
			}
			return src.Status(), nil
		},
	})
	ln := deps.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("ROUTER_ADDR: %w", err)
		}
	}
	srv := service.NewHTTPServer(cfg.Addr, mux)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stopHTTP := func(sctx context.Context) error {
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("http shutdown: %w", err)
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	}

	handler := consume.NewHandler(consume.Config{
		MaxDeliver:     cfg.MaxDeliver,
		PublishTimeout: cfg.PublishTimeout,
		BackoffMin:     cfg.BackoffMin,
		BackoffMax:     cfg.BackoffMax,
		Build:          route.BuildOptions{DefaultLocale: cfg.DefaultLocale},
	}, js, src,
		consume.WithLogger(log),
		consume.WithMetrics(metrics),
		consume.WithTracing(deps.Telemetry.TracerProvider, deps.Telemetry.Propagator))

	running, stopWatch, err := start(ctx, cfg, nc, js, src, handler, log)
	if err != nil {
		sctx, cancel := service.ShutdownContext(ctx, cfg.ShutdownTimeout)
		defer cancel()
		herr := stopHTTP(sctx)
		derr := service.Drain(nc, service.Remaining(sctx))
		if ctx.Err() != nil { // stopped while starting: a clean exit
			return errors.Join(herr, derr)
		}
		return errors.Join(err, herr, derr)
	}
	consuming.Store(true)
	log.Info("router consuming", "stream", events.StreamClerk, "durable", events.DurableRouter,
		"concurrency", cfg.Concurrency, "rules", src.Status(), "addr", ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("http: %w", err)
		served <- nil // stopHTTP reads it again
	}
	consuming.Store(false)
	log.Info("router draining", "budget", cfg.ShutdownTimeout)
	// One deadline for the whole shutdown: the events in flight finish and
	// settle, then NATS drains, then HTTP stops, each with what is left.
	sctx, cancel := service.ShutdownContext(ctx, cfg.ShutdownTimeout)
	defer cancel()
	errs := []error{runErr}
	errs = append(errs, running.Stop(sctx))
	stopWatch()
	errs = append(errs, service.Drain(nc, service.Remaining(sctx)), stopHTTP(sctx))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("router stopped")
	return nil
}

// start provisions what the router needs, loads the KV rules and starts
// consuming. It waits for NATS as long as ctx allows.
func start(ctx context.Context, cfg Config, nc *nats.Conn, js jetstream.JetStream, src *rulesource.Source,
	h *consume.Handler, log *slog.Logger) (*rtconsume.Runtime, func(), error) {
	if cfg.NATS.Provision {
		if err := service.UntilConnected(ctx, nc, log, "provision streams", func(ctx context.Context) error {
			return service.Provision(ctx, js, cfg.NATS.StreamOptions()...)
		}); err != nil {
			return nil, nil, err
		}
	}
	var cons jetstream.Consumer
	if err := service.UntilConnected(ctx, nc, log, "consumer "+events.DurableRouter, func(ctx context.Context) (err error) {
		cons, err = service.DurableConsumer(ctx, js, events.StreamClerk,
			events.ConsumerConfig(events.DurableRouter, events.WithAckWait(cfg.AckWait),
				events.WithMaxDeliver(rtconsume.ServerMaxDeliver(cfg.MaxDeliver))), cfg.NATS.Provision)
		return err
	}); err != nil {
		return nil, nil, err
	}
	stopWatch := func() {}
	if cfg.RoutesKVBucket != "" {
		var kv jetstream.KeyValue
		if err := service.UntilConnected(ctx, nc, log, "rules bucket "+cfg.RoutesKVBucket, func(ctx context.Context) (err error) {
			kv, err = rulesource.OpenBucket(ctx, js, cfg.RoutesKVBucket, cfg.NATS.Provision, cfg.NATS.Replicas)
			if err != nil {
				return err
			}
			stopWatch, err = src.Watch(ctx, kv)
			return err
		}); err != nil {
			return nil, nil, err
		}
	} else {
		src.SetLoaded()
	}
	running, err := consume.Start(ctx, cons, h, cfg.Concurrency, cfg.AckWait)
	if err != nil {
		stopWatch()
		return nil, nil, err
	}
	return running, stopWatch, nil
}
