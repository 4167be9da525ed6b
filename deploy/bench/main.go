// Command bench measures the pipeline's throughput, latency and memory in one
// run on one machine, against a fake Novu:
//
//   - phase A, the ceiling: raw JetStream publishes waiting for each PubAck;
//   - phase B, ingest: signed webhooks posted at the receiver at the same concurrency;
//   - phase C, end to end: a fixed rate, a burst, and a burst drained under
//     Novu's rate limit, each trigger accounted for by its transactionId.
//
// It prints a table and, with -json, writes the same numbers as JSON. Run it
// from the repository root:
//
//	go run ./deploy/bench
//	go run ./deploy/bench -smoke            # a few seconds, for CI
//	go run ./deploy/bench -c 16,64 -duration 10s -rate 1000 -burst 20000 -json bench.json
//
// See docs/benchmarks.md for the method and the numbers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if dir := os.Getenv(natsChildEnv); dir != "" {
		os.Exit(natsChildMain(dir))
	}
	if url := os.Getenv(floorChildEnv); url != "" {
		os.Exit(floorChildMain(url))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errTargetsMissed):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run parses args, runs the bench and reports. Its error is nil when every
// phase was measured and correct; a missed performance target is reported in
// the table (and JSON) but is an error only outside -smoke.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, stderr: stderr}
	report, err := b.run(ctx)
	if report != nil {
		if err != nil {
			report.Errors = append(report.Errors, err.Error())
		}
		report.writeTable(stdout)
		if cfg.jsonPath != "" {
			if jerr := report.writeJSON(cfg.jsonPath); jerr != nil {
				return errors.Join(err, fmt.Errorf("write %s: %w", cfg.jsonPath, jerr))
			}
		}
	}
	if err != nil {
		return err
	}
	if err := report.correct(); err != nil {
		return err
	}
	if !cfg.smoke {
		for _, t := range report.Targets {
			if !t.Met {
				return errTargetsMissed
			}
		}
	}
	return nil
}
