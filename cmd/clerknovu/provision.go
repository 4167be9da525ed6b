package main

import (
	"context"

	"github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func provisionCmd(c *cli, g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "Create or update the streams, consumers and KV bucket to match the configuration",
		Long: `provision compares the declared streams (CLERK, NOVU, DLQ), durable consumers and the
routing rules bucket (ROUTES_KV_BUCKET or --bucket) with what the server has, prints each
difference, and applies it. It reads the same STREAM_*, ROUTER_ACK_WAIT, NOVU_ACK_WAIT and
NOVU_TIMEOUT settings as the services. It is the one place that changes existing resources:
a service only creates what is missing and warns about differences.`,
		Example: `  STREAM_DUPLICATE_WINDOW=48h clerknovu provision --dry-run
  clerknovu provision --bucket ROUTES`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.RunE = g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
		declared, err := g.declared(c)
		if err != nil {
			return err
		}
		changes, err := provision.Plan(ctx, js, declared)
		if err != nil {
			return err
		}
		p := g.printer(c)
		for _, ch := range changes {
			p.emit(ch, "%s", ch.String())
		}
		switch {
		case len(changes) == 0:
			p.textf("up to date: nothing to change")
			return nil
		case dryRun:
			p.textf("dry run: %d change(s), nothing applied", len(changes))
			return nil
		}
		if err := provision.Apply(ctx, js, changes); err != nil {
			return err
		}
		p.textf("applied %d change(s)", len(changes))
		return nil
	})
	return cmd
}

func statusCmd(c *cli, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show streams, consumers, the DLQ depth and the routing rules in force",
		Long: `status prints, per stream, its messages, bytes and first/last message; per durable consumer,
its pending, ack-pending and redelivered counts and last activity; the DLQ depth by stage and
reason; and the routing rules stored in the rules bucket (its revision and what they compose
to). It exits 1 when a declared stream or consumer is missing.`,
		Example: `  clerknovu status
  clerknovu status --json | jq 'select(.kind=="consumer")'`,
		Args: args(cobra.NoArgs),
	}
	cmd.RunE = g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
		return status(ctx, c, g, js)
	})
	return cmd
}
