package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/clerknovu/pipeline/cmd/clerknovu/ops"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func replayCmd(c *cli, g *globals) *cobra.Command {
	var since, until string
	var types, svixIDs []string
	var yes, fresh bool
	var rate float64
	cmd := &cobra.Command{
		Use:   "replay --since T [--until T] [--type T]... [--svix-id ID]... [--fresh] [--yes]",
		Short: "Re-route stored Clerk events through the router",
		Long: `replay republishes stored CLERK events on their subjects, with fresh Nats-Msg-Ids and a
Replay-Of header, for the router to route again (for example after adding a rule). Because
transactionIds derive from the svix-id and the workflow id, workflows that already ran are
dropped as repeats (by NOVU's duplicate window and Novu's transactionId check) and only newly
routed workflows fire. --fresh gives each copy a new svix-id instead, so every workflow fires
again with new transactionIds: a deliberate re-notify.

Without --yes it prints the plan and changes nothing (and exits 1 without a terminal to ask on).`,
		Example: `  clerknovu replay --since 24h --type user.created
  clerknovu replay --since 2026-12-01T08:00:00Z --until 2026-12-01T09:00:00Z --yes
  clerknovu replay --since 7d --svix-id msg_2abc --fresh --yes`,
		Args: args(cobra.NoArgs),
	}
	fs := cmd.Flags()
	fs.StringVar(&since, "since", "", "stored at or after (required): RFC 3339 or a duration back from now (2h, 7d)")
	fs.StringVar(&until, "until", "", "stored at or before: RFC 3339 or a duration back from now")
	fs.StringSliceVar(&types, "type", nil, "event type (repeat for several)")
	fs.StringSliceVar(&svixIDs, "svix-id", nil, "svix-id (repeat for several)")
	fs.BoolVar(&fresh, "fresh", false, "derive new transactionIds: notify again")
	fs.BoolVar(&yes, "yes", false, "apply the plan without asking")
	fs.Float64Var(&rate, "rate", 0, "at most N republishes per second (0: unpaced)")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		now := c.now()
		sel := ops.EventSelector{Types: types, SvixIDs: svixIDs}
		var err error
		if since == "" {
			return usagef("--since is required")
		}
		if sel.Since, err = ops.ParseTime(since, now); err != nil {
			return usageError{fmt.Errorf("--since: %w", err)}
		}
		if until != "" {
			if sel.Until, err = ops.ParseTime(until, now); err != nil {
				return usageError{fmt.Errorf("--until: %w", err)}
			}
		}
		if err := sel.Validate(); err != nil {
			return usageError{err}
		}
		return g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
			evs, err := ops.ListEvents(ctx, js, sel)
			if err != nil {
				return err
			}
			p := g.printer(c)
			s := ops.SummarizeEvents(evs, fresh, 3)
			if p.json {
				p.emit(struct {
					Kind string `json:"kind"`
					ops.EventSummary
				}{"plan", s}, "")
			} else {
				p.textf("plan: replay %d event(s) through the router", s.Count)
				if fresh {
					p.textf("  --fresh: new transactionIds, so every routed workflow triggers AGAIN")
				} else {
					p.textf("  same transactionIds: workflows that already ran are dropped as repeats; only newly routed ones fire")
				}
				for _, k := range ops.Counts(s.ByType) {
					p.textf("  type %5d  %s", s.ByType[k], k)
				}
				for _, e := range s.Sample {
					p.textf("  sample: CLERK #%d %s %s svix=%s", e.Seq, when(e.Time), e.Type, e.SvixID)
				}
			}
			if len(evs) == 0 {
				return nil
			}
			if err := confirm(c, yes, fmt.Sprintf("replay %d event(s)", len(evs))); err != nil {
				return err
			}
			run := strconv.FormatInt(now.UnixMilli(), 10)
			outs, err := ops.Replay(ctx, js, evs, run, fresh, ops.RunOptions{Rate: rate, Progress: progress(c, "replayed")})
			return printOutcomes(p, outs, err)
		})(cmd, a)
	}
	return cmd
}
