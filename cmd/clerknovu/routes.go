package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/clerknovu/pipeline/cmd/clerknovu/ops"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func routesCmd(c *cli, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Check, test, store and read routing rules with the router's own code",
		Example: `  clerknovu routes check services/router/routes.example.yaml
  clerknovu routes test services/router/routes.example.yaml user.created`,
	}
	cmd.AddCommand(routesCheckCmd(c, g), routesTestCmd(c, g), routesPutCmd(c, g), routesGetCmd(c, g))
	return group(cmd)
}

// checkFile reads and checks a rules file; an invalid one is bad usage (exit 2).
func checkFile(path string) ([]byte, *route.Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("read rules: %w", err)}
	}
	rules, err := ops.CheckRules("file "+path, data)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return data, rules, nil
}

type rulesLine struct {
	Source  string `json:"source"`
	Rules   int    `json:"rules"`
	InForce string `json:"in_force"`
}

func routesCheckCmd(c *cli, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a rules document exactly as the router does",
		Long: `check parses FILE and composes it over the built-in rules with the router's code, and
prints the rules in force it would give. It exits 0 when valid, 2 with the router's one-line
error when not. No NATS needed.`,
		Example: `  clerknovu routes check services/router/routes.example.yaml`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, rules, err := checkFile(a[0])
			if err != nil {
				return err
			}
			g.printer(c).emit(rulesLine{Source: "file " + a[0], Rules: rules.Len(), InForce: rules.String()}, "ok: %s", rules.String())
			return nil
		},
	}
}

func routesTestCmd(c *cli, g *globals) *cobra.Command {
	var svixID, locale string
	cmd := &cobra.Command{
		Use:   "test FILE EVENT.json|SAMPLE",
		Short: "Print the commands the router would publish for one event",
		Long: `test routes one event (a JSON file, or the name of a sample such as user.created or
email.created/magic_link_sign_in; see go run ./deploy/send -list) with the rules of FILE over
the built-in rules, using the router's code, and prints one JSON line per command the router
would publish (workflowId, to, transactionId for a trigger; sync for a sync command), or the
reason it would dead-letter or skip the event. No NATS needed.`,
		Example: `  clerknovu routes test services/router/routes.example.yaml user.created
  clerknovu routes test my-rules.yaml ./event.json --svix-id msg_2abc`,
		Args: args(cobra.ExactArgs(2)),
	}
	cmd.Flags().StringVar(&svixID, "svix-id", "msg_clerknovu_routes_test", "svix-id the transactionIds and sync ids derive from")
	cmd.Flags().StringVar(&locale, "default-locale", "", "subscriber locale when the event has none (default $DEFAULT_LOCALE or "+route.DefaultLocale+")")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		_, rules, err := checkFile(a[0])
		if err != nil {
			return err
		}
		body, err := os.ReadFile(a[1])
		if err != nil {
			s, ok := samples.Get(a[1])
			if !ok {
				return usagef("EVENT: %q is neither a readable file nor a sample (%v)", a[1], err)
			}
			body = s.Body
		}
		opts := route.BuildOptions{DefaultLocale: cmp.Or(locale, strings.TrimSpace(c.getenv("DEFAULT_LOCALE")), route.DefaultLocale)}
		p := g.printer(c)
		p.json = true // JSON lines are this command's output
		for _, r := range ops.TestRoute(rules, body, svixID, opts) {
			p.emit(r, "")
		}
		return nil
	}
	return cmd
}

func routesPutCmd(c *cli, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "put FILE",
		Short: "Check a rules document, then store it in the rules KV bucket",
		Long: `put checks FILE exactly as routes check does and, only when it is valid, writes it to the
rules key of the bucket (--bucket, ROUTES_KV_BUCKET or ROUTES); every router watching the
bucket applies it within moments. An invalid document is never stored (exit 2).`,
		Example: `  clerknovu routes put services/router/routes.example.yaml`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			data, _, err := checkFile(a[0])
			if err != nil {
				return err
			}
			return g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
				bucket := g.routesBucket(c)
				rev, rules, err := ops.PutRules(ctx, js, bucket, "file "+a[0], data)
				if err != nil {
					return err
				}
				g.printer(c).emit(struct {
					Bucket   string `json:"bucket"`
					Revision uint64 `json:"revision"`
					InForce  string `json:"in_force"`
				}{bucket, rev, rules.String()}, "stored in kv %s rev %d: %s", bucket, rev, rules.String())
				return nil
			})(cmd, a)
		},
	}
}

func routesGetCmd(c *cli, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get",
		Short: "Print the rules stored in the rules KV bucket and what they compose to",
		Long: `get prints the rules document stored in the bucket (--bucket, ROUTES_KV_BUCKET or ROUTES),
its revision, and the rules in force it gives, or why the router rejects it.`,
		Example: `  clerknovu routes get
  clerknovu routes get --json | jq -r .value`,
		Args: args(cobra.NoArgs),
		RunE: g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
			r, err := ops.GetRules(ctx, js, g.routesBucket(c))
			if err != nil {
				return err
			}
			p := g.printer(c)
			if p.json {
				p.emit(struct {
					ops.StoredRules
					Value string `json:"value"`
				}{r, string(r.Value)}, "")
				return nil
			}
			if r.Invalid != "" {
				p.textf("# kv %s rev %d, INVALID (the router keeps its last good rules): %s", r.Bucket, r.Revision, r.Invalid)
			} else {
				p.textf("# kv %s rev %d: %s", r.Bucket, r.Revision, r.InForce)
			}
			p.textf("%s", strings.TrimRight(string(r.Value), "\n"))
			return nil
		}),
	}
}
