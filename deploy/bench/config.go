package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// config is the bench's settings, from its flags.
type config struct {
	duration       time.Duration
	ingestMax      int
	concurrency    []int
	rate           float64
	rateDuration   time.Duration
	burst          int
	rateLimit      float64
	rateLimitCount int
	mix            string
	smoke          bool
	jsonPath       string
	mode           string
	nats           string
	pprofDir       string
	pprofSeconds   int
	keep           bool
	servicesFrom   string
	quiet          bool
}

// parseFlags reads the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./deploy/bench [flags]\n\n"+
			"Measures the pipeline in one run: the JetStream publish ceiling (A), webhook\n"+
			"ingest (B) at the same concurrency, and end-to-end delivery (C) to a fake\n"+
			"Novu at a fixed rate, in a burst, and in a burst drained under Novu's rate\n"+
			"limit. Prints a table; -json writes the same numbers as JSON.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each phase A and phase B run (B stops early if its pre-signed pool, as many webhooks as A published, runs out)")
	fs.IntVar(&c.ingestMax, "ingest-max", 0, "cap on phase B's webhooks (0: as many as phase A published)")
	conc := fs.String("c", "16,64", "concurrency levels of phases A and B, comma-separated")
	fs.Float64Var(&c.rate, "rate", 1000, "webhooks per second of the fixed-rate end-to-end phase (0 skips it)")
	fs.DurationVar(&c.rateDuration, "rate-duration", 10*time.Second, "length of the fixed-rate phase")
	fs.IntVar(&c.burst, "burst", 20000, "user.created webhooks of the burst phase, Novu rate limit off (0 skips it)")
	fs.Float64Var(&c.rateLimit, "ratelimit", 200, "NOVU_RATE_LIMIT (tokens/s) of the rate-limited burst phase (0 skips it: rate limit off throughout)")
	fs.IntVar(&c.rateLimitCount, "ratelimit-events", 3000, "user.created webhooks of the rate-limited burst phase")
	fs.StringVar(&c.mix, "mix", "user.created=50,catalog=50", "payload mix of phases A, B and the fixed-rate phase: sample=weight,...; catalog is every plain event type sharing its weight")
	fs.BoolVar(&c.smoke, "smoke", false, "a correctness run of a few seconds with small numbers, for CI (in-process services, unless -mode is set)")
	fs.StringVar(&c.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&c.mode, "mode", modeExec, "exec: build the services and run each as its own process (per-service RSS); inproc: run them in the bench process")
	fs.StringVar(&c.nats, "nats", "child", "exec mode's JetStream server: child (this binary re-executed), embedded (in the bench process), or the nats:// URL of a server for benchmarks only (the bench purges its CLERK stream)")
	fs.StringVar(&c.pprofDir, "pprof", "", "write CPU profiles of the receiver and (exec mode) the floor, taken while B and the floor take turns at the highest concurrency, into this directory (the receiver serves pprof on RECEIVER_OPS_ADDR with RECEIVER_PPROF=true)")
	fs.IntVar(&c.pprofSeconds, "pprof-seconds", 0, "length of the receiver's and the floor's CPU profiles, taken while B and the floor take turns at the highest -c (default: the phase A duration)")
	fs.StringVar(&c.servicesFrom, "services-from", "", "exec mode: build the services from the Go workspace at this directory instead of the current one (e.g. a checkout of an older commit, for before/after numbers)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (service logs, binaries, store)")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.smoke {
		defaults := map[string]func(){
			"duration":         func() { c.duration = 300 * time.Millisecond },
			"ingest-max":       func() { c.ingestMax = 1000 },
			"c":                func() { *conc = "4" },
			"rate":             func() { c.rate = 200 },
			"rate-duration":    func() { c.rateDuration = time.Second },
			"burst":            func() { c.burst = 300 },
			"ratelimit":        func() { c.rateLimit = 1000 },
			"ratelimit-events": func() { c.rateLimitCount = 300 },
			"mode":             func() { c.mode = modeInProc },
			"nats":             func() { c.nats = "embedded" },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	for s := range strings.SplitSeq(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-c: want positive whole numbers separated by commas, got %q", *conc)
		}
		c.concurrency = append(c.concurrency, n)
	}
	switch {
	case c.mode != modeExec && c.mode != modeInProc:
		return c, fmt.Errorf("-mode: want %s or %s, got %q", modeExec, modeInProc, c.mode)
	case c.duration <= 0:
		return c, fmt.Errorf("-duration: want a positive duration")
	case c.rate < 0 || c.rateLimit < 0 || c.burst < 0 || c.rateLimitCount < 0:
		return c, fmt.Errorf("-rate, -ratelimit, -burst and -ratelimit-events cannot be negative")
	case c.rate > 0 && c.rateDuration <= 0:
		return c, fmt.Errorf("-rate-duration: want a positive duration")
	}
	if c.pprofSeconds <= 0 {
		c.pprofSeconds = max(1, int(c.duration.Seconds()))
	}
	return c, nil
}
