// Command devstack runs the whole pipeline on one machine with nothing but Go:
// an embedded JetStream server (client port 4222 on 127.0.0.1, so the nats
// CLI can tap it) and the receiver (:8080), router (:8081) and novu-sink
// (:8082) in one process.
//
//	go run ./deploy/devstack
//
// Data (the JetStream store and the generated webhook signing secret) is kept
// in ./.devstack relative to the current directory, so run it from the
// repository root, where the send tool looks for the secret; it survives
// restarts. Delete the directory to start afresh.
//
// Every service reads its usual environment (ROUTES_FILE, NOVU_SECRET_KEY,
// NOVU_API_URL, LOG_LEVEL...), over devstack's defaults: LOG_FORMAT=text,
// ROUTES_KV_BUCKET=ROUTES, a generated CLERK_WEBHOOK_SIGNING_SECRET, and
// NOVU_DRY_RUN=true unless NOVU_SECRET_KEY is set. The NATS_* connection
// settings are ignored: the services always use the embedded server.
//
// Flags (and the environment variables that set their defaults):
//
//	-dir            DEVSTACK_DIR            data directory (.devstack)
//	-nats-port      DEVSTACK_NATS_PORT      NATS client port on 127.0.0.1 (4222)
//	-receiver-addr  DEVSTACK_RECEIVER_ADDR  receiver webhook address (127.0.0.1:8080)
//	-receiver-ops-addr DEVSTACK_RECEIVER_OPS_ADDR receiver ops address (127.0.0.1:9090)
//	-router-addr    DEVSTACK_ROUTER_ADDR    router HTTP address (127.0.0.1:8081)
//	-sink-addr      DEVSTACK_SINK_ADDR      novu-sink HTTP address (127.0.0.1:8082)
//
// Ctrl-C stops the receiver, then the router, then the sink, then the server,
// and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	var (
		ue usageError
		ce *stack.ConfigError
	)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ue), errors.As(err, &ce):
		fmt.Fprintf(os.Stderr, "devstack: %s\n", service.OneLine(err))
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "devstack: %s\n", service.OneLine(err))
		os.Exit(1)
	}
}

// usageError is a wrong flag or setting: exit status 2, as is a
// [stack.ConfigError].
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run starts the stack, prints how to use it, and waits for ctx.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	o, err := parseFlags(args, getenv, out)
	if err != nil {
		return err
	}
	env := service.NewEnv(stack.Layered(nil, getenv, map[string]string{"LOG_FORMAT": "text"}))
	logCfg := env.Log()
	if err := env.Err(); err != nil {
		return usageError{err}
	}
	log := service.NewLogger(out, logCfg)
	o.Logger = log
	o.Getenv = getenv
	o.Telemetry = func(ctx context.Context, name string) (service.Telemetry, error) {
		return service.SetupTelemetry(ctx, name)
	}
	st, err := stack.Start(ctx, o)
	if err != nil {
		return err
	}
	printBanner(out, st)
	err = st.Wait()
	if err == nil {
		log.Info("devstack stopped")
	}
	return err
}

// parseFlags reads the flags, with defaults from DEVSTACK_* variables.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (stack.Options, error) {
	def := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	o := stack.Options{}
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.Dir, "dir", def("DEVSTACK_DIR", ".devstack"), "data directory, relative to the current directory (DEVSTACK_DIR)")
	port := fs.String("nats-port", def("DEVSTACK_NATS_PORT", strconv.Itoa(stack.DefaultNATSPort)), "NATS client port on 127.0.0.1, 0 for any free one (DEVSTACK_NATS_PORT)")
	fs.StringVar(&o.ReceiverAddr, "receiver-addr", def("DEVSTACK_RECEIVER_ADDR", stack.DefaultReceiverAddr), "receiver webhook address (DEVSTACK_RECEIVER_ADDR)")
	fs.StringVar(&o.ReceiverOpsAddr, "receiver-ops-addr", def("DEVSTACK_RECEIVER_OPS_ADDR", stack.DefaultReceiverOpsAddr), "receiver ops address: /healthz /readyz /metrics (DEVSTACK_RECEIVER_OPS_ADDR)")
	fs.StringVar(&o.RouterAddr, "router-addr", def("DEVSTACK_ROUTER_ADDR", stack.DefaultRouterAddr), "router HTTP address (DEVSTACK_ROUTER_ADDR)")
	fs.StringVar(&o.SinkAddr, "sink-addr", def("DEVSTACK_SINK_ADDR", stack.DefaultSinkAddr), "novu-sink HTTP address (DEVSTACK_SINK_ADDR)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected argument %q: devstack takes only flags", fs.Arg(0))}
	}
	n, err := strconv.Atoi(*port)
	if err != nil || n < 0 || n > 65535 {
		return o, usageError{fmt.Errorf("-nats-port: want a port from 1 to 65535 (0 for any free one), got %q", *port)}
	}
	o.NATSPort = n
	if o.Dir == "" {
		return o, usageError{errors.New("-dir: want a directory")}
	}
	return o, nil
}

// printBanner tells, in a few lines, where everything is and how to poke it.
func printBanner(w io.Writer, st *stack.Stack) {
	secret := st.Secret + " (generated, kept in " + st.SecretFile + ")"
	if st.SecretFile == "" {
		secret = "from " + stack.SigningSecretEnv + " (not shown)"
	}
	routes := "the router's built-in rules (set ROUTES_FILE or ROUTES_KV_BUCKET to change them)"
	if st.RoutesBucket != "" {
		routes = fmt.Sprintf("edit live: NATS_URL=%s go run ./cmd/clerknovu routes put services/router/routes.example.yaml (kv %s/%s)",
			st.NATSURL, st.RoutesBucket, events.RoutesKVKey)
	}
	fmt.Fprintf(w, `
devstack is running (data in %s; Ctrl-C to stop)
  webhook   POST %s
  secret    %s
  novu      %s
  ops       receiver %s, router %s, sink %s (/healthz /readyz /metrics)
  routes    %s
  send      go run ./deploy/send user.created
  tap       nats -s %[9]s sub 'clerk.>'
            nats -s %[9]s sub 'novu.trigger.>'
  operate   NATS_URL=%[9]s go run ./cmd/clerknovu status   (dlq ls, dlq redrive, replay, routes...)

`, st.Dir, st.WebhookURL, secret, st.Novu, st.ReceiverOpsURL, st.RouterURL, st.SinkURL, routes, st.NATSURL)
}
