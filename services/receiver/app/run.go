package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	jsprovision "github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/internal/httpapi"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Deps are what [Run] takes from its caller; zero fields get defaults.
type Deps struct {
	service.Deps
	// OpsListener, when set, serves the ops endpoints instead of listening
	// on OpsAddr (tests and devstack pass 127.0.0.1:0). Run closes it.
	// Deps.Listener is the webhook's.
	OpsListener net.Listener
}

// ServiceName names the receiver in NATS connections, logs and traces.
const ServiceName = "receiver"

// Run serves the receiver until ctx is done, then shuts down gracefully and
// returns nil. Startup problems (invalid configuration, a listen error) are
// returned at once.
//
// NATS need not be up at start: the connection retries forever, webhooks get
// 503 and /readyz is 503 until it is connected and stream CLERK answers. The
// streams are ensured in the background (created when missing and
// cfg.NATS.Provision is set, compared with the configuration, never changed),
// retrying with backoff until that succeeds, so the receiver never
// crash-loops while NATS is away.
//
// On shutdown it stops accepting connections, lets in-flight webhooks finish
// (each waits at most PublishTimeout for its PubAck), then drains the NATS
// connection, all within ShutdownTimeout.
func Run(ctx context.Context, cfg Config, deps Deps) (err error) {
	// Until serving starts, an error return closes what was opened.
	var nc *nats.Conn
	ln, opsLn, serving := deps.Listener, deps.OpsListener, false
	defer func() {
		if !serving {
			for _, l := range []net.Listener{ln, opsLn} {
				if l != nil {
					_ = l.Close()
				}
			}
			if nc != nil {
				nc.Close()
			}
		}
	}()
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	deps.Deps = deps.WithDefaults()
	log := deps.Logger
	verifier, err := verify.New(cfg.Secrets)
	if err != nil {
		return err
	}
	metrics, err := httpapi.NewMetrics(deps.Registry)
	if err != nil {
		return err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("RECEIVER_ADDR: listen on %s: %w", cfg.Addr, err)
		}
	}
	if opsLn == nil {
		if opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			return fmt.Errorf("RECEIVER_OPS_ADDR: listen on %s: %w", cfg.OpsAddr, err)
		}
	}
	// With NATS down, Connect returns at once and keeps retrying in the
	// background. The body cap is checked against the server's max_payload
	// once: here when connected at start (an error), else when the
	// connection comes up (too late to refuse, so it is logged). nats.go
	// calls the handler for a connect made at start too: it waits to learn
	// which case this is.
	decided := make(chan struct{})
	var connectedLate bool
	nc, err = service.Connect(cfg.NATS, ServiceName, log,
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
			<-decided
			if !connectedLate {
				return
			}
			if err := checkPayload(cfg.MaxBodyBytes, nc.MaxPayload()); err != nil {
				log.Error("webhooks near the body cap will get 413", "err", err)
			}
		}))
	if err != nil {
		return err
	}
	connectedLate = !nc.IsConnected()
	close(decided)
	if connectedLate {
		log.Warn("nats not reachable yet; answering 503 until it is, retrying in the background")
	} else if err := checkPayload(cfg.MaxBodyBytes, nc.MaxPayload()); err != nil {
		return err
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		// Also clears futures nobody waits for any more (a request that timed out).
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	webhook, err := httpapi.New(httpapi.Options{
		Verifier:       verifier,
		Publisher:      js,
		Metrics:        metrics,
		Logger:         log,
		TracerProvider: deps.Telemetry.TracerProvider,
		Propagator:     deps.Telemetry.Propagator,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxInFlight:    cfg.MaxInFlight,
		PublishTimeout: cfg.PublishTimeout,
	})
	if err != nil {
		return err
	}
	// BaseContext stays the default: cancelling ctx must not abort in-flight
	// webhooks, which Shutdown lets finish.
	srv := service.NewHTTPServer(cfg.Addr, onlyPath(cfg.Path, webhook))
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	opsMux := http.NewServeMux()
	service.RegisterOps(opsMux, deps.Registry, service.NATSCheck(nc, js, events.StreamClerk))
	opsSrv := service.NewHTTPServer(cfg.OpsAddr, opsMux)
	if cfg.Pprof {
		registerPprof(opsMux)
		opsSrv.WriteTimeout = 0 // a CPU profile answers after its ?seconds=
	}
	opsSrv.ErrorLog = srv.ErrorLog
	go func() { _ = opsSrv.Serve(opsLn) }()
	defer func() { _ = opsSrv.Close() }()
	bgCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	var background sync.WaitGroup
	background.Go(func() { provision(bgCtx, nc, js, cfg.NATS, log) })
	served := make(chan error, 1)
	serving = true
	go func() { served <- srv.Serve(ln) }()
	log.Info("receiver listening", "addr", ln.Addr().String(), "path", cfg.Path, "ops_addr", opsLn.Addr().String(),
		"pprof", cfg.Pprof, "max_body_bytes", cfg.MaxBodyBytes, "max_in_flight", cfg.MaxInFlight, "publish_timeout", cfg.PublishTimeout.String(), "secrets", len(cfg.Secrets))

	select {
	case <-ctx.Done():
		log.Info("receiver shutting down")
	case err = <-served:
		served <- nil
		err = fmt.Errorf("serve http: %w", err)
		log.Error("receiver stopped serving", "err", err)
	}
	shutdownCtx, cancel := service.ShutdownContext(ctx, cfg.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		_ = srv.Close()
		err = errors.Join(err, fmt.Errorf("http shutdown: %w", serr))
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve http: %w", serr))
	}
	stopBackground()
	background.Wait()
	if derr := service.Drain(nc, max(service.Remaining(shutdownCtx), time.Second)); derr != nil {
		err = errors.Join(err, derr)
	}
	log.Info("receiver stopped")
	return err
}

// onlyPath serves h at exactly path and 404 everywhere else: the webhook
// port serves the webhook and nothing more. One string comparison instead of
// a ServeMux, whose pattern matching, path cleaning and redirects the one
// fixed path does not need.
func onlyPath(path string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// provision ensures the streams in the background (created when missing,
// never changed), waiting for NATS as long as ctx allows; until it succeeds
// /readyz reports the stream unreachable and webhooks get 503.
func provision(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg service.NATSConfig, log *slog.Logger) {
	declared := events.Resources{Streams: events.StreamConfigs(cfg.StreamOptions()...)}.OnlyStreams(events.StreamClerk)
	err := service.UntilConnected(ctx, nc, log, "provision streams", func(ctx context.Context) error {
		return jsprovision.Ensure(ctx, js, declared, cfg.Provision, log)
	})
	switch {
	case err == nil:
		log.Info("streams ensured")
	case ctx.Err() == nil:
		log.Error("cannot ensure the streams", "err", err)
	}
}
