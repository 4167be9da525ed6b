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
	"strings"
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

// ingestRow runs phase A, then phase B and the floor in alternating
// slices, at concurrency c.
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
	// Fresh svix-ids for each (the floor's would otherwise be duplicates
	// of B's, cheaper to store).
	hooks, err := b.gen.make(n+200, "")
	if err != nil {
		return row, err
	}
	floorHooks, err := b.gen.make(n+200, "")
	if err != nil {
		return row, err
	}
	resume, err := pauseRouter(ctx, p)
	if err != nil {
		return row, err
	}
	defer resume()
	var fl *floor
	if b.cfg.mode == modeExec {
		fl, err = startFloorChild(ctx, p.natsURL)
	} else {
		fl, err = startFloor(p.natsURL)
	}
	if err != nil {
		return row, err
	}
	defer fl.close()
	pids := p.pids()
	if fl.pid > 0 {
		pids[floorProcessName] = fl.pid
	}
	floorRun, err := startIngest(ctx, b.client, fl.url, floorHooks[:200], floorHooks[200:], c, pids)
	if err != nil {
		return row, fmt.Errorf("floor: %w", err)
	}
	ingest, err := startIngest(ctx, b.client, p.webhookURL, hooks[:200], hooks[200:], c, pids)
	if err != nil {
		return row, fmt.Errorf("phase B: %w", err)
	}
	// B and the floor take turns in slices of about a second, in ABBA
	// order (floor, B, B, floor, floor, B, ...): load from outside the
	// bench that comes and goes on a shared machine, and any drift during
	// the row, weigh on both alike, and neither always goes first.
	turns := max(2, int(b.cfg.duration/time.Second))
	slice := b.cfg.duration / time.Duration(turns)
	b.logf("phase B and floor: up to %d pre-signed webhooks each, c=%d, %v each, in %d alternating slices of %v", n, c, b.cfg.duration, 2*turns, slice)
	resetPeaks(p)
	var profiles []chan error
	if b.cfg.pprofDir != "" && c == maxInt(b.cfg.concurrency) {
		// Both profiles over the same slices, to set side by side; the
		// floor's only in a process of its own (in-process, it would be a
		// second CPU profile of the bench's process, which Go refuses).
		receiverProfile := make(chan error, 1)
		profiles = []chan error{receiverProfile}
		go func() {
			receiverProfile <- b.saveProfile(ctx, "receiver", p.receiverURL, fmt.Sprintf("receiver-cpu-c%d.pprof", c))
		}()
		if fl.pid > 0 {
			floorProfile := make(chan error, 1)
			profiles = append(profiles, floorProfile)
			go func() {
				floorProfile <- b.saveProfile(ctx, "floor", strings.TrimSuffix(fl.url, receiverPath), fmt.Sprintf("floor-cpu-c%d.pprof", c))
			}()
		}
	}
	for i := range turns {
		first, second := floorRun, ingest
		if i%2 == 1 {
			first, second = ingest, floorRun
		}
		first.run(ctx, slice)
		second.run(ctx, slice)
	}
	row.Ingest = ingest.throughput()
	row.Floor = floorRun.throughput()
	row.Memory = readPeaks(p)
	for _, profile := range profiles {
		if err := <-profile; err != nil {
			b.report.Errors = append(b.report.Errors, err.Error())
		}
	}
	if row.Floor.PerSecond > 0 {
		row.FloorRatio = round3(row.Ingest.PerSecond / row.Floor.PerSecond)
	}
	if row.Ceiling.PerSecond > 0 {
		row.Ratio = round3(row.Ingest.PerSecond / row.Ceiling.PerSecond)
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

// ingestRun is phase B, or the floor at another url: concurrency workers
// post pre-signed hooks to url, each waiting for its answer before the next;
// only 2xx count. It is measured in one or more timed runs, which share the
// hooks and add up their counts, latencies and CPU time.
type ingestRun struct {
	client      *http.Client
	url         string
	hooks       []webhook
	next        atomic.Int64 // hooks taken
	concurrency int
	res         loopResult
	meter       *cpuMeter
}

// startIngest warms up url with warm (connections, buffers, the runtime)
// and returns the run, its CPU meter over pids paused.
func startIngest(ctx context.Context, client *http.Client, url string, warm, hooks []webhook, concurrency int, pids map[string]int) (*ingestRun, error) {
	in := &ingestRun{client: client, url: url, hooks: warm, concurrency: concurrency}
	if err := in.post(ctx, 0).err(); err != nil {
		return nil, fmt.Errorf("warm-up of %s: %w", url, err)
	}
	in.hooks = hooks
	in.next.Store(0)
	in.meter = startCPU(pids)
	in.meter.pause()
	return in, nil
}

// post runs the workers for d (0: until the hooks run out).
func (in *ingestRun) post(ctx context.Context, d time.Duration) *loopResult {
	left := len(in.hooks) - int(in.next.Load())
	if left <= 0 {
		return &loopResult{}
	}
	return closedLoop(ctx, in.concurrency, d, left, func(ctx context.Context) (time.Duration, error) {
		w := &in.hooks[int(in.next.Add(1))-1]
		start := time.Now()
		err := post(ctx, in.client, in.url, w)
		return time.Since(start), err
	})
}

// run measures one timed run of d and adds it to the others.
func (in *ingestRun) run(ctx context.Context, d time.Duration) {
	in.meter.resume()
	r := in.post(ctx, d)
	in.meter.pause()
	in.res.ok += r.ok
	in.res.fail += r.fail
	in.res.lat = append(in.res.lat, r.lat...)
	in.res.elapsed += r.elapsed
	if in.res.firstErr == nil {
		in.res.firstErr = r.firstErr
	}
}

// throughput is what the runs measured together.
func (in *ingestRun) throughput() Throughput {
	t := in.res.throughput(in.concurrency)
	t.CPU = in.meter.stop(t.OK)
	return t
}

// pauseRouter pauses the router's consumer while phase B and the floor run,
// so that only the receiver (or the floor) and NATS work. The returned func
// purges what they stored in CLERK and resumes the consumer.
func pauseRouter(ctx context.Context, p *pipeline) (func(), error) {
	if _, err := p.js.PauseConsumer(ctx, events.StreamClerk, events.DurableRouter, time.Now().Add(time.Hour)); err != nil {
		return nil, fmt.Errorf("phase B: pause the router's consumer: %w", err)
	}
	return func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if s, err := p.js.Stream(cctx, events.StreamClerk); err == nil {
			_ = s.Purge(cctx)
		}
		_, _ = p.js.ResumeConsumer(cctx, events.StreamClerk, events.DurableRouter)
	}, nil
}

// saveProfile saves a CPU profile of -pprof-seconds from the pprof handler
// under base into the -pprof directory as name.
func (b *bench) saveProfile(ctx context.Context, what, base, name string) error {
	if err := os.MkdirAll(b.cfg.pprofDir, 0o755); err != nil {
		return err
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, b.cfg.pprofSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s profile: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s profile: GET %s: %s", what, url, resp.Status)
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
	b.logf("  %s CPU profile in %s", what, path)
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
