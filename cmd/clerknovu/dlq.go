package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/clerknovu/pipeline/cmd/clerknovu/ops"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// selectorFlags are the dead-letter selectors shared by ls, redrive and purge.
type selectorFlags struct {
	stage, workflow, reason, since, until, seq string
	types                                      []string
}

func (f *selectorFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.stage, "stage", "", "router or sink")
	fs.StringSliceVar(&f.types, "type", nil, "event type, e.g. user.created (repeat or comma-separate for several)")
	fs.StringVar(&f.workflow, "workflow", "", "Novu workflow id")
	fs.StringVar(&f.reason, "reason", "", "substring of the reason, case-insensitive")
	fs.StringVar(&f.since, "since", "", "stored at or after: RFC 3339 or a duration back from now (2h, 7d)")
	fs.StringVar(&f.until, "until", "", "stored at or before: RFC 3339 or a duration back from now")
	fs.StringVar(&f.seq, "seq", "", "DLQ sequence range: A-B, A-, -B or A")
}

func (f *selectorFlags) selector(c *cli) (ops.Selector, error) {
	s := ops.Selector{Stage: f.stage, Types: f.types, Workflow: f.workflow, Reason: f.reason}
	var err error
	now := c.now()
	if f.since != "" {
		if s.Since, err = ops.ParseTime(f.since, now); err != nil {
			return s, usageError{fmt.Errorf("--since: %w", err)}
		}
	}
	if f.until != "" {
		if s.Until, err = ops.ParseTime(f.until, now); err != nil {
			return s, usageError{fmt.Errorf("--until: %w", err)}
		}
	}
	if f.seq != "" {
		if s.SeqFrom, s.SeqTo, err = ops.ParseSeqRange(f.seq); err != nil {
			return s, usageError{fmt.Errorf("--seq: %w", err)}
		}
	}
	if err := s.Validate(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

func dlqCmd(c *cli, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, redrive and purge dead letters (stream DLQ)",
		Example: `  clerknovu dlq ls --stage sink --reason workflow_not_found
  clerknovu dlq redrive --stage router --type user.created --yes`,
	}
	cmd.AddCommand(dlqLsCmd(c, g), dlqShowCmd(c, g), dlqRedriveCmd(c, g), dlqPurgeCmd(c, g))
	return group(cmd)
}

func dlqLsCmd(c *cli, g *globals) *cobra.Command {
	var f selectorFlags
	cmd := &cobra.Command{
		Use:   "ls [selectors]",
		Short: "List dead letters",
		Long: `ls lists the dead letters the selectors pick, oldest first. With --json each line carries
seq, stage, subject, type, workflow, reason, svix_id, time, deliveries and truncated.`,
		Example: `  clerknovu dlq ls --since 2h
  clerknovu dlq ls --stage router --type user.created --type session.created --json
  clerknovu dlq ls --seq 100-200 --reason "novu 422"`,
		Args: args(cobra.NoArgs),
	}
	f.register(cmd.Flags())
	var sel ops.Selector
	cmd.PreRunE = func(*cobra.Command, []string) (err error) {
		sel, err = f.selector(c)
		return err
	}
	cmd.RunE = g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
		dls, err := ops.ListDeadLetters(ctx, js, sel)
		if err != nil {
			return err
		}
		p := g.printer(c)
		for _, d := range dls {
			p.emit(d, "%s", dlqLine(d))
		}
		p.textf("%d dead letter(s)", len(dls))
		return nil
	})
	return cmd
}

func dlqLine(d ops.DeadLetter) string {
	what := d.Type
	if d.Workflow != "" {
		what += " → " + d.Workflow
	}
	trunc := ""
	if d.Truncated {
		trunc = " [truncated]"
	}
	return fmt.Sprintf("#%-6d %s %-6s %s svix=%s deliveries=%d%s: %s", d.Seq, when(d.Time), d.Stage, what, d.SvixID, d.Deliveries, trunc, d.Reason)
}

func dlqShowCmd(c *cli, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show SEQ",
		Short:   "Show one dead letter: its fields, every header and the body",
		Example: `  clerknovu dlq show 42`,
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		seq, err := strconv.ParseUint(a[0], 10, 64)
		if err != nil || seq == 0 {
			return usagef("SEQ: want a DLQ sequence number, got %q", a[0])
		}
		return g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
			d, err := ops.GetDeadLetter(ctx, js, seq)
			if err != nil {
				return err
			}
			p := g.printer(c)
			if p.json {
				p.emit(struct {
					ops.DeadLetter
					Header map[string][]string `json:"header"`
					Body   string              `json:"body"`
				}{d, d.Header, string(d.Body)}, "")
				return nil
			}
			p.textf("%s", dlqLine(d))
			p.textf("source: %s #%d (%s)", d.SourceStream, d.SourceSequence, d.SourceSubject)
			keys := make([]string, 0, len(d.Header))
			for k := range d.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p.textf("%s: %s", k, strings.Join(d.Header[k], ", "))
			}
			p.textf("\n%s", d.Body)
			return nil
		})(cmd, a)
	}
	return cmd
}

// printPlan prints a dead-letter plan: how many, by stage, type and reason, a sample.
func printPlan(p *printer, verb string, s ops.Summary) {
	if p.json {
		p.emit(struct {
			Kind string `json:"kind"`
			ops.Summary
		}{"plan", s}, "")
		return
	}
	p.textf("plan: %s %d dead letter(s)", verb, s.Count)
	for _, group := range []struct {
		name string
		m    map[string]int
	}{{"stage", s.ByStage}, {"type", s.ByType}, {"reason", s.ByReason}} {
		for _, k := range ops.Counts(group.m) {
			p.textf("  %-7s %5d  %s", group.name, group.m[k], k)
		}
	}
	if len(s.Sample) > 0 {
		p.textf("sample:")
		for _, d := range s.Sample {
			p.textf("  %s", dlqLine(d))
		}
	}
}

// progress prints a progress line on a terminal.
func progress(c *cli, verb string) func(done, total int) {
	if !c.terminal {
		return nil
	}
	return func(done, total int) {
		fmt.Fprintf(c.stderr, "\r%s %d/%d", verb, done, total)
		if done == total {
			fmt.Fprintln(c.stderr)
		}
	}
}

// printOutcomes prints each refused or failed outcome (every one with
// --json) and a summary, and fails when any failed.
func printOutcomes(p *printer, outs []ops.Outcome, runErr error) error {
	for _, o := range outs {
		if p.json || o.Result == ops.ResultRefused || o.Result == ops.ResultFailed {
			p.emit(o, "#%d %s: %s", o.Seq, o.Result, o.Reason)
		}
	}
	t := ops.Tally(outs)
	var parts []string
	for _, k := range ops.Counts(t) {
		parts = append(parts, fmt.Sprintf("%d %s", t[k], k))
	}
	p.emit(struct {
		Kind   string         `json:"kind"`
		Counts map[string]int `json:"counts"`
	}{"summary", t}, "done: %s", strings.Join(parts, ", "))
	if runErr != nil {
		return runErr
	}
	if t[ops.ResultFailed] > 0 || t[ops.ResultRefused] > 0 {
		return fmt.Errorf("%d failed, %d refused", t[ops.ResultFailed], t[ops.ResultRefused])
	}
	return nil
}

// dlqChangeCmd is a command that changes the selected dead letters (redrive,
// purge): selectors and --yes, the plan first, then apply.
func dlqChangeCmd(c *cli, g *globals, cmd *cobra.Command, verb, done string,
	apply func(ctx context.Context, js jetstream.JetStream, dls []ops.DeadLetter, o ops.RunOptions) ([]ops.Outcome, error), rate *float64) *cobra.Command {
	var f selectorFlags
	var yes bool
	f.register(cmd.Flags())
	var sel ops.Selector
	cmd.PreRunE = func(*cobra.Command, []string) (err error) {
		sel, err = f.selector(c)
		return err
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "apply the plan without asking")
	cmd.RunE = g.withJS(c, func(ctx context.Context, js jetstream.JetStream) error {
		dls, err := ops.ListDeadLetters(ctx, js, sel)
		if err != nil {
			return err
		}
		p := g.printer(c)
		printPlan(p, verb, ops.Summarize(dls, 3))
		if len(dls) == 0 {
			return nil
		}
		if err := confirm(c, yes, fmt.Sprintf("%s %d dead letter(s)", verb, len(dls))); err != nil {
			return err
		}
		o := ops.RunOptions{Progress: progress(c, done)}
		if rate != nil {
			o.Rate = *rate
		}
		outs, err := apply(ctx, js, dls, o)
		return printOutcomes(p, outs, err)
	})
	return cmd
}

func dlqRedriveCmd(c *cli, g *globals) *cobra.Command {
	var rate float64
	cmd := &cobra.Command{
		Use:   "redrive [selectors]",
		Short: "Republish dead letters to where they came from, then delete them",
		Long: `redrive republishes each selected dead letter where it came from: a router dead letter as
the original event on its clerk.<type> subject in CLERK, a sink dead letter as the command on
novu.trigger.<workflow> in NOVU. It keeps the svix-id, the transactionId and the trace context,
sets a fresh Nats-Msg-Id (so the duplicate window does not drop it) and Redrive-Of/Redrive-Count
headers, and deletes the dead letter only after the republish is acked. A truncated dead letter
is redriven from its source (stream and sequence), or refused when the source has aged out.

Without --yes it prints the plan and changes nothing (and exits 1 without a terminal to ask on).
Redriving twice never triggers a workflow twice: the transactionId is the same.`,
		Example: `  clerknovu dlq redrive --stage router --since 1h          # the plan
  clerknovu dlq redrive --stage router --since 1h --yes    # do it
  clerknovu dlq redrive --workflow user-created --rate 20 --yes`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().Float64Var(&rate, "rate", 0, "at most N republishes per second (0: unpaced)")
	return dlqChangeCmd(c, g, cmd, "redrive", "redriven", ops.Redrive, &rate)
}

func dlqPurgeCmd(c *cli, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "purge [selectors] --yes",
		Short: "Delete dead letters deliberately",
		Long: `purge deletes the selected dead letters. Without --yes it prints the plan and changes
nothing (and exits 1 without a terminal to ask on).`,
		Example: `  clerknovu dlq purge --reason "workflow_not_found" --until 7d --yes
  clerknovu dlq purge --seq 1-99`,
		Args: args(cobra.NoArgs),
	}
	return dlqChangeCmd(c, g, cmd, "purge", "purged", ops.Purge, nil)
}
