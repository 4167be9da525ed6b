package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// globals are the flags every command has.
type globals struct {
	server, creds, bucket string
	json                  bool
	timeout               time.Duration
}

func newRoot(c *cli) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "clerknovu",
		Short: "Operate the Clerk → Novu pipeline: provisioning, status, dead letters, replay, routing rules",
		Long: `clerknovu operates the Clerk → Novu pipeline over NATS JetStream.

It reads the same variables as the services: NATS_URL, NATS_CREDS, NATS_NKEY,
NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_TLS_*, the STREAM_* and consumer
settings (for provision) and ROUTES_KV_BUCKET. --server and --creds override
NATS_URL and NATS_CREDS. Exit status: 0 success, 1 failure, 2 bad usage.`,
		Example: `  NATS_URL=nats://127.0.0.1:4222 clerknovu status
  clerknovu dlq ls --stage router --since 2h --json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetIn(c.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "NATS server URLs, comma-separated (default $NATS_URL or "+service.DefaultNATSURL+")")
	pf.StringVar(&g.creds, "creds", "", "NATS .creds file (default $NATS_CREDS)")
	pf.StringVar(&g.bucket, "bucket", "", "routing rules KV bucket (default $ROUTES_KV_BUCKET or ROUTES)")
	pf.BoolVar(&g.json, "json", false, "print JSON, one object per line")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "bound on each NATS request")
	root.AddCommand(
		provisionCmd(c, g), statusCmd(c, g), dlqCmd(c, g), replayCmd(c, g), routesCmd(c, g),
	)
	return group(root)
}

// group makes cmd, a command of subcommands (the root, dlq, routes),
// refuse an unknown one as bad usage, naming the nearest ones: cobra prints
// the help of a command without Run and exits 0, so a typo such as
// "clerknovu dlq lss" would look like success to a script. Without
// arguments it still prints the help. With flag errors (the root's flag
// error func) and argument counts (every leaf's [args]), every usage error
// is then a usageError; no flag is marked required.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which SuggestionsFor does not apply
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if len(a) == 0 {
			return cmd.Help()
		}
		err := fmt.Errorf("unknown command %q for %q", a[0], cmd.CommandPath())
		if near := cmd.SuggestionsFor(a[0]); len(near) > 0 {
			err = fmt.Errorf("%w (did you mean %s?)", err, strings.Join(near, " or "))
		}
		return usageError{err}
	}
	return cmd
}

// args wraps a cobra argument check so its error means bad usage.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// env reads the services' settings, with the flags over them.
func (g *globals) env(c *cli) *service.Env {
	return service.NewEnv(func(k string) string {
		switch {
		case k == "NATS_URL" && g.server != "":
			return g.server
		case k == "NATS_CREDS" && g.creds != "":
			return g.creds
		}
		return c.getenv(k)
	})
}

// routesBucket is --bucket, else ROUTES_KV_BUCKET, else ROUTES.
func (g *globals) routesBucket(c *cli) string {
	return cmp.Or(g.bucket, strings.TrimSpace(c.getenv("ROUTES_KV_BUCKET")), "ROUTES")
}

// connect connects once, failing fast when NATS is not there (the services
// wait for it; an operator wants the answer).
func (g *globals) connect(cmd *cobra.Command, c *cli) (*nats.Conn, jetstream.JetStream, error) {
	e := g.env(c)
	cfg := e.NATS()
	if err := e.Err(); err != nil {
		return nil, nil, usageError{err}
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	nc, err := service.Connect(cfg, "clerknovu", log, nats.RetryOnFailedConnect(false), nats.MaxReconnects(0), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(g.timeout))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// withJS runs fn with a connection, closed after.
func (g *globals) withJS(c *cli, fn func(ctx context.Context, js jetstream.JetStream) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		nc, js, err := g.connect(cmd, c)
		if err != nil {
			return err
		}
		defer nc.Close()
		return fn(cmd.Context(), js)
	}
}

// printer writes text or, with --json, one JSON object per line.
type printer struct {
	w    io.Writer
	json bool
	enc  *json.Encoder
}

func (g *globals) printer(c *cli) *printer {
	p := &printer{w: c.stdout, json: g.json, enc: json.NewEncoder(c.stdout)}
	p.enc.SetEscapeHTML(false)
	return p
}

// emit prints v as one JSON line (with --json) or text as given.
func (p *printer) emit(v any, text string, args ...any) {
	if p.json {
		_ = p.enc.Encode(v)
		return
	}
	fmt.Fprintf(p.w, text+"\n", args...)
}

// textf prints only in text mode.
func (p *printer) textf(format string, args ...any) {
	if !p.json {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

// confirm applies the plan-first rule: with yes, go on; without and with a
// person at a terminal, ask; without and without a terminal, refuse (exit 1).
func confirm(c *cli, yes bool, question string) error {
	switch {
	case yes:
		return nil
	case !c.terminal:
		return fmt.Errorf("plan only, nothing changed: pass --yes to %s", question)
	}
	fmt.Fprintf(c.stderr, "%s? [y/N] ", question)
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a == "y" || a == "yes" {
		return nil
	}
	return fmt.Errorf("not confirmed, nothing changed")
}

// declared is every resource, shaped by the environment as the services are.
func (g *globals) declared(c *cli) (events.Resources, error) {
	e := g.env(c)
	o := e.Resources()
	o.RoutesBucket = cmp.Or(g.bucket, o.RoutesBucket)
	if err := e.Err(); err != nil {
		return events.Resources{}, usageError{err}
	}
	return events.Declared(o), nil
}
