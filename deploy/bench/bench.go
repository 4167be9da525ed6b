package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
)

// novuKey is the secret key the fake Novu accepts.
const novuKey = "bench-novu-secret-key"

// bench runs every phase once.
type bench struct {
	cfg    config
	stderr io.Writer
	dir    string
	secret string
	fake   *novufake.Server
	launch *launcher
	gen    *generator
	client *http.Client
	mix    mix
	report *Report
}

func (b *bench) logf(format string, args ...any) {
	if !b.cfg.quiet {
		fmt.Fprintf(b.stderr, "bench: "+format+"\n", args...)
	}
}

// env is the services' environment, on top of their defaults.
func (b *bench) env(rateLimit float64, routes string) map[string]string {
	env := map[string]string{
		stack.SigningSecretEnv: b.secret,
		"NOVU_API_URL":         b.fake.URL,
		"NOVU_SECRET_KEY":      novuKey,
		"NOVU_DRY_RUN":         "false",
		"NOVU_RATE_LIMIT":      strconv.FormatFloat(rateLimit, 'f', -1, 64),
		"ROUTES_FILE":          routes,
		"ROUTES_KV_BUCKET":     "",
		"LOG_LEVEL":            "warn",
		"LOG_FORMAT":           "text",
	}
	if b.cfg.pprofDir != "" {
		env[pprofEnv] = "true"
	}
	if b.cfg.smoke {
		// Stops the sink within 0.1 s instead of 1 s, for the restart.
		env["NOVU_FETCH_WAIT"] = "100ms"
	}
	return env
}

// run runs the phases and returns the report; an error means the bench could
// not measure, not that a target was missed.
func (b *bench) run(ctx context.Context) (*Report, error) {
	var err error
	if b.mix, err = parseMix(b.cfg.mix); err != nil {
		return nil, err
	}
	if b.dir, err = os.MkdirTemp("", "bench-"); err != nil {
		return nil, err
	}
	if b.cfg.keep {
		b.logf("keeping %s", b.dir)
	} else {
		defer os.RemoveAll(b.dir)
	}
	logDir := filepath.Join(b.dir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	if b.secret, err = stack.NewSecret(); err != nil {
		return nil, err
	}
	routes, err := writeRoutes(b.dir)
	if err != nil {
		return nil, err
	}
	b.fake = novufake.NewServer(novuKey)
	defer b.fake.Close()
	b.gen = newGenerator(b.secret, b.mix, 1)
	b.client = newClient(max(64, maxInt(b.cfg.concurrency)))
	defer b.client.CloseIdleConnections()

	b.launch = &launcher{mode: b.cfg.mode, natsArg: b.cfg.nats, from: b.cfg.servicesFrom, dir: b.dir, logDir: logDir}
	if err := b.launch.prepare(ctx, b.logf); err != nil {
		return nil, err
	}
	defer b.launch.shutdown()
	b.report = newReport(b.cfg, b.mix, b.launch.where())

	p, err := b.launch.start(ctx, b.env(0, routes))
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.close() }()
	b.logf("pipeline up (%s mode, NATS %s)", b.cfg.mode, b.launch.where())

	for _, c := range b.cfg.concurrency {
		row, err := b.ingestRow(ctx, p, c)
		if err != nil {
			return b.report, err
		}
		b.report.Ingest = append(b.report.Ingest, row)
	}

	if b.cfg.rate > 0 {
		n := int(b.cfg.rate * b.cfg.rateDuration.Seconds())
		hooks, err := b.gen.make(n, "")
		if err != nil {
			return b.report, err
		}
		b.logf("end to end: %d webhooks at %g/s", n, b.cfg.rate)
		d, err := b.delivery(ctx, p, deliveryPlan{
			name:  fmt.Sprintf("fixed rate %g/s for %v, mix", b.cfg.rate, b.cfg.rateDuration),
			hooks: hooks, rate: b.cfg.rate, concurrency: 64, settle: 20 * time.Second,
		})
		if err != nil {
			return b.report, err
		}
		b.report.Delivery = append(b.report.Delivery, d)
	}
	if b.cfg.burst > 0 {
		hooks, err := b.gen.make(b.cfg.burst, "user.created")
		if err != nil {
			return b.report, err
		}
		c := maxInt(b.cfg.concurrency)
		b.logf("end to end: burst of %d user.created at concurrency %d, rate limit off", b.cfg.burst, c)
		d, err := b.delivery(ctx, p, deliveryPlan{
			name:  fmt.Sprintf("burst %d user.created, c=%d, rate limit off", b.cfg.burst, c),
			hooks: hooks, concurrency: c, settle: 30 * time.Second,
		})
		if err != nil {
			return b.report, err
		}
		b.report.Delivery = append(b.report.Delivery, d)
	}
	if b.cfg.rateLimit > 0 && b.cfg.rateLimitCount > 0 {
		b.logf("restarting the services with NOVU_RATE_LIMIT=%g", b.cfg.rateLimit)
		t0 := time.Now()
		if err := p.close(); err != nil {
			return b.report, fmt.Errorf("stop the services: %w", err)
		}
		t1 := time.Now()
		if p, err = b.launch.start(ctx, b.env(b.cfg.rateLimit, routes)); err != nil {
			return b.report, err
		}
		b.logf("  stopped in %v, started in %v", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		hooks, err := b.gen.make(b.cfg.rateLimitCount, "user.created")
		if err != nil {
			return b.report, err
		}
		c := maxInt(b.cfg.concurrency)
		b.logf("end to end: burst of %d user.created, NOVU_RATE_LIMIT=%g", b.cfg.rateLimitCount, b.cfg.rateLimit)
		d, err := b.delivery(ctx, p, deliveryPlan{
			name:  fmt.Sprintf("burst %d user.created, c=%d, NOVU_RATE_LIMIT=%g", b.cfg.rateLimitCount, c, b.cfg.rateLimit),
			hooks: hooks, concurrency: c, rateLimit: b.cfg.rateLimit, settle: 30 * time.Second,
		})
		if err != nil {
			return b.report, err
		}
		b.report.Delivery = append(b.report.Delivery, d)
	}
	b.report.evaluate()
	return b.report, nil
}

// ingestRow runs phase A then phase B at concurrency c.
func (b *bench) ingestRow(ctx context.Context, p *pipeline, c int) (IngestRow, error) {
	row := IngestRow{Concurrency: c}
	pool, err := b.gen.make(4096, "")
	if err != nil {
		return row, err
	}
	b.logf("phase A: JetStream publishes, sync PubAck, c=%d, %v", c, b.cfg.duration)
	if row.Ceiling, err = phaseCeiling(ctx, p.nc, pool, c, b.cfg.duration, p.pids()); err != nil {
		return row, err
	}
	n := min(max(row.Ceiling.OK, 100), maxIngestPool)
	if b.cfg.ingestMax > 0 {
		n = min(n, b.cfg.ingestMax)
	}
	hooks, err := b.gen.make(n+200, "")
	if err != nil {
		return row, err
	}
	b.logf("phase B: up to %d pre-signed webhooks, c=%d, %v", n, c, b.cfg.duration)
	resetPeaks(p)
	var profile chan error
	if b.cfg.pprofDir != "" && c == maxInt(b.cfg.concurrency) {
		profile = make(chan error, 1)
		go func() { profile <- b.cpuProfile(ctx, p, fmt.Sprintf("receiver-cpu-c%d.pprof", c)) }()
	}
	if row.Ingest, err = phaseIngest(ctx, p, b.client, p.webhookURL, hooks[:200], hooks[200:], c, b.cfg.duration); err != nil {
		return row, err
	}
	row.Memory = readPeaks(p)
	if profile != nil {
		if err := <-profile; err != nil {
			b.report.Errors = append(b.report.Errors, err.Error())
		}
	}
	// The floor, right after B, with fresh svix-ids (B's would be duplicates,
	// cheaper to store) and the same client and concurrency.
	floorHooks, err := b.gen.make(n+200, "")
	if err != nil {
		return row, err
	}
	var fl *floor
	if b.cfg.mode == modeExec {
		fl, err = startFloorChild(ctx, p.natsURL)
	} else {
		var f *floorServer
		if f, err = startFloor(p.natsURL); err == nil {
			fl = &floor{url: f.url, close: f.close}
		}
	}
	if err != nil {
		return row, err
	}
	b.logf("floor: bare net/http + async publish, up to %d webhooks, c=%d, %v", n, c, b.cfg.duration)
	row.Floor, err = phaseIngest(ctx, p, b.client, fl.url, floorHooks[:200], floorHooks[200:], c, b.cfg.duration)
	fl.close()
	if err != nil {
		return row, err
	}
	if row.Floor.PerSecond > 0 {
		row.FloorRatio = float64(int(row.Ingest.PerSecond/row.Floor.PerSecond*1000+0.5)) / 1000
	}
	if row.Ceiling.PerSecond > 0 {
		row.Ratio = float64(int(row.Ingest.PerSecond/row.Ceiling.PerSecond*1000+0.5)) / 1000
	}
	b.logf("  A %.0f/s, B %.0f/s, floor %.0f/s, B/A %.3f, B/floor %.3f", row.Ceiling.PerSecond, row.Ingest.PerSecond, row.Floor.PerSecond, row.Ratio, row.FloorRatio)
	return row, nil
}

// delivery runs one end-to-end phase and records the services' peak memory.
func (b *bench) delivery(ctx context.Context, p *pipeline, plan deliveryPlan) (Delivery, error) {
	if err := p.waitIdle(ctx, 60*time.Second); err != nil {
		return Delivery{}, err
	}
	resetPeaks(p)
	d, err := runDelivery(ctx, p, b.fake, b.client, plan)
	d.Memory = readPeaks(p)
	if err == nil {
		b.logf("  %d/%d triggers, %d lost, %d duplicates, %d dead-lettered, p99 %.1f ms", d.Delivered, d.Expected, d.Lost, d.Duplicates, d.DeadLettered, d.Latency.P99)
	}
	return d, err
}

// maxIngestPool bounds the webhooks pre-signed for one phase B run.
const maxIngestPool = 300_000

// phaseIngest is phase B (and the floor, at another url): concurrency
// workers post the pre-signed hooks to url, each waiting for its answer before the next, for d or until
// the hooks run out; only 2xx count.
// The router's consumer is paused meanwhile, and what B stored is purged
// after, so that only the receiver and NATS work during the measurement.
func phaseIngest(ctx context.Context, p *pipeline, client *http.Client, url string, warm, hooks []webhook, concurrency int, d time.Duration) (Throughput, error) {
	if _, err := p.js.PauseConsumer(ctx, events.StreamClerk, events.DurableRouter, time.Now().Add(time.Hour)); err != nil {
		return Throughput{}, fmt.Errorf("phase B: pause the router's consumer: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if s, err := p.js.Stream(cctx, events.StreamClerk); err == nil {
			_ = s.Purge(cctx)
		}
		_, _ = p.js.ResumeConsumer(cctx, events.StreamClerk, events.DurableRouter)
	}()
	postAll := func(list []webhook, d time.Duration) *loopResult {
		var next atomic.Int64
		return closedLoop(ctx, concurrency, d, len(list), func(ctx context.Context) (time.Duration, error) {
			w := &list[int(next.Add(1))-1]
			start := time.Now()
			err := post(ctx, client, url, w)
			return time.Since(start), err
		})
	}
	if err := postAll(warm, 0).err(); err != nil {
		return Throughput{}, fmt.Errorf("phase B warm-up: %w", err)
	}
	meter := startCPU(p.pids())
	t := postAll(hooks, d).throughput(concurrency)
	t.CPU = meter.stop(t.OK)
	return t, nil
}

// cpuProfile saves a CPU profile of the receiver, taken while phase B runs.
func (b *bench) cpuProfile(ctx context.Context, p *pipeline, name string) error {
	if err := os.MkdirAll(b.cfg.pprofDir, 0o755); err != nil {
		return err
	}
	if p.debugURL == "" {
		return fmt.Errorf("receiver profile: no %s", pprofEnv)
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.debugURL, b.cfg.pprofSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("receiver profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("receiver profile: GET %s: %s (does the receiver serve pprof with %s=true?)", url, resp.Status, pprofEnv)
	}
	path := filepath.Join(b.cfg.pprofDir, name)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	b.logf("  receiver CPU profile in %s", path)
	return f.Close()
}

// resetPeaks resets every service's peak RSS.
func resetPeaks(p *pipeline) {
	for _, pid := range p.pids() {
		resetPeakRSS(pid)
	}
}

// readPeaks reads every service's memory; nil in-process.
func readPeaks(p *pipeline) map[string]Memory {
	pids := p.pids()
	if len(pids) == 0 {
		return nil
	}
	out := map[string]Memory{}
	for name, pid := range pids {
		if m, err := readMemory(pid); err == nil {
			out[name] = m
		}
	}
	return out
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// errTargetsMissed is returned (exit status 1) when a target is missed.
var errTargetsMissed = errors.New("targets missed")
