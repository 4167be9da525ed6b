package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured.
type Report struct {
	Date     string       `json:"date"`
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	Ingest   []IngestRow  `json:"ingest"`
	Delivery []Delivery   `json:"end_to_end"`
	Peak     PeakByTarget `json:"peak_rss,omitempty"`
	Targets  []Target     `json:"targets"`
	Errors   []string     `json:"errors,omitempty"`
}

// PeakByTarget is each service's highest peak RSS over every phase.
type PeakByTarget map[string]float64

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OSArch    string `json:"os_arch"`
	// LoadStart and LoadEnd are /proc/loadavg when the run started and
	// ended: anything else running on the machine skews the numbers.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Mode            string  `json:"mode"`
	NATS            string  `json:"nats"`
	Duration        string  `json:"phase_a_duration"`
	Concurrency     []int   `json:"concurrency"`
	Rate            float64 `json:"rate"`
	RateDuration    string  `json:"rate_duration"`
	Burst           int     `json:"burst"`
	RateLimit       float64 `json:"rate_limit"`
	RateLimitEvents int     `json:"rate_limit_events"`
	Mix             string  `json:"mix"`
	MeanBodyBytes   int     `json:"mean_body_bytes"`
	Signing         string  `json:"signing"`
	PhaseA          string  `json:"phase_a"`
	PhaseB          string  `json:"phase_b"`
	FakeNovu        string  `json:"fake_novu"`
	ServicesFrom    string  `json:"services_from,omitempty"`
	Smoke           bool    `json:"smoke"`
}

// IngestRow compares phases A and B at one concurrency.
type IngestRow struct {
	Concurrency int        `json:"concurrency"`
	Ceiling     Throughput `json:"a_jetstream"`
	Ingest      Throughput `json:"b_ingest"`
	// Ratio is B/A in messages per second.
	Ratio float64 `json:"ratio_b_a"`
	// Floor is the same client at the same concurrency against a bare
	// net/http handler that only stores the body (async publish, answer
	// after the PubAck); FloorRatio is B/floor.
	Floor      Throughput `json:"floor"`
	FloorRatio float64    `json:"ratio_b_floor"`
	// Memory is each service's peak resident set during phase B.
	Memory map[string]Memory `json:"memory,omitempty"`
}

// Target is one goal of the issue and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// rssTargetMB is the per-service memory target, in decimal megabytes
// (40 MB is 38.1 MiB; the report shows MiB, as /proc counts KiB).
const rssTargetMB = 40

func newReport(c config, m mix, natsWhere string) *Report {
	return &Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: Machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAvg()},
		Settings: Settings{
			Mode:            c.mode,
			NATS:            natsWhere,
			Duration:        c.duration.String(),
			Concurrency:     c.concurrency,
			Rate:            c.rate,
			RateDuration:    c.rateDuration.String(),
			Burst:           c.burst,
			RateLimit:       c.rateLimit,
			RateLimitEvents: c.rateLimitCount,
			Mix:             m.String(),
			MeanBodyBytes:   m.meanBodyBytes(),
			Signing:         "pre-signed before timing (a fresh svix-id and signature per webhook)",
			PhaseA:          "N goroutines on one connection, each PublishMsg + wait for the PubAck, same bodies and headers as the receiver publishes, unique Nats-Msg-Id, stream configured like CLERK (file storage, same dedupe window)",
			PhaseB:          "N workers posting pre-signed webhooks over keep-alive HTTP/1.1, each waiting for the answer, for the same duration as A; only 2xx count; the router's consumer paused and CLERK purged after, so only the receiver and NATS work",
			FakeNovu:        "novufake in the bench process, no latency added",
			Smoke:           c.smoke,
			ServicesFrom:    c.servicesFrom,
		},
	}
}

// cpuModel reads the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAvg returns the three load averages of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// evaluate fills Peak and Targets.
func (r *Report) evaluate() {
	r.Machine.LoadEnd = loadAvg()
	peak := PeakByTarget{}
	note := func(mem map[string]Memory) {
		for name, m := range mem {
			peak[name] = max(peak[name], m.PeakMiB)
		}
	}
	for _, row := range r.Ingest {
		note(row.Memory)
		r.Targets = append(r.Targets, Target{
			Name: fmt.Sprintf("ingest c=%d", row.Concurrency),
			Want: "B/A ≥ 1.0",
			Got:  fmt.Sprintf("%.3f (%.0f/s vs %.0f/s)", row.Ratio, row.Ingest.PerSecond, row.Ceiling.PerSecond),
			Met:  row.Ratio >= 1.0 && row.Ingest.Failed == 0,
		})
		r.Targets = append(r.Targets, Target{
			Name: fmt.Sprintf("ingest vs floor c=%d", row.Concurrency),
			Want: "B/floor ≥ 0.85",
			Got:  fmt.Sprintf("%.3f (%.0f/s vs %.0f/s)", row.FloorRatio, row.Ingest.PerSecond, row.Floor.PerSecond),
			Met:  row.FloorRatio >= 0.85 && row.Ingest.Failed == 0,
		})
	}
	for _, d := range r.Delivery {
		note(d.Memory)
		clean := d.Lost == 0 && d.Duplicates == 0 && d.Unexpected == 0 && d.DeadLettered == 0 && d.Accepted == d.Webhooks && d.Error == ""
		got := fmt.Sprintf("%d/%d delivered, %d lost, %d duplicates, %d dead-lettered", d.Delivered, d.Expected, d.Lost, d.Duplicates, d.DeadLettered)
		switch {
		case d.RateLimit > 0:
			dev := 0.0
			if d.RateLimit > 0 {
				dev = (d.SteadyTokenRate - d.RateLimit) / d.RateLimit
			}
			r.Targets = append(r.Targets, Target{
				Name: d.Name,
				Want: fmt.Sprintf("drained at %g tokens/s (±5%%), nothing lost or dead-lettered", d.RateLimit),
				Got:  fmt.Sprintf("%s; steady %.1f tokens/s (%+.1f%%), %.1f triggers/s", got, d.SteadyTokenRate, dev*100, d.SteadyRate),
				Met:  clean && dev >= -0.05 && dev <= 0.05,
			})
		case strings.HasPrefix(d.Name, "fixed rate"):
			r.Targets = append(r.Targets, Target{
				Name: d.Name,
				Want: "p99 < 20 ms, nothing lost",
				Got:  fmt.Sprintf("p99 %.1f ms; %s", d.Latency.P99, got),
				Met:  clean && d.Latency.P99 < 20,
			})
		default:
			r.Targets = append(r.Targets, Target{
				Name: d.Name,
				Want: "fully delivered, nothing dead-lettered",
				Got:  fmt.Sprintf("%s in %.1f s (%.0f/s)", got, d.DeliverSeconds, d.DeliverRate),
				Met:  clean,
			})
		}
	}
	if len(peak) > 0 {
		r.Peak = peak
		for _, name := range slices.Sorted(maps.Keys(peak)) {
			if name == natsServerName {
				continue
			}
			limitMiB := rssTargetMB * 1e6 / (1 << 20)
			r.Targets = append(r.Targets, Target{
				Name: "peak RSS " + name,
				Want: fmt.Sprintf("< %d MB (%.1f MiB)", rssTargetMB, limitMiB),
				Got:  fmt.Sprintf("%.1f MiB (%.1f MB)", peak[name], peak[name]*(1<<20)/1e6),
				Met:  peak[name] < limitMiB,
			})
		}
	}
}

// correct reports whether every end-to-end phase delivered each expected
// trigger exactly once with nothing dead-lettered: what the smoke test checks.
func (r *Report) correct() error {
	var problems []string
	for _, d := range r.Delivery {
		if d.Lost != 0 || d.Duplicates != 0 || d.Unexpected != 0 || d.DeadLettered != 0 || d.Accepted != d.Webhooks || d.Error != "" {
			problems = append(problems, fmt.Sprintf("%s: %d/%d accepted, %d lost, %d duplicates, %d unexpected, %d dead-lettered %s",
				d.Name, d.Accepted, d.Webhooks, d.Lost, d.Duplicates, d.Unexpected, d.DeadLettered, d.Error))
		}
	}
	for _, row := range r.Ingest {
		if row.Ceiling.Failed != 0 || row.Ingest.Failed != 0 {
			problems = append(problems, fmt.Sprintf("ingest c=%d: %d A and %d B failures: %s %s", row.Concurrency,
				row.Ceiling.Failed, row.Ingest.Failed, row.Ceiling.FirstError, row.Ingest.FirstError))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("incorrect: %s", strings.Join(problems, "; "))
	}
	return nil
}

// writeJSON writes the report to path.
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeTable prints the report as tables.
func (r *Report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s %s; load average %s at start, %s at end\n", r.Machine.CPUs, r.Machine.CPUModel,
		r.Machine.GoVersion, r.Machine.OSArch, r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(w, "services: %s mode; NATS: %s\n", r.Settings.Mode, r.Settings.NATS)
	fmt.Fprintf(w, "mix: %s (mean body %d bytes); signing: %s\n\n", r.Settings.Mix, r.Settings.MeanBodyBytes, r.Settings.Signing)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tc\tok\tfailed\tmsgs/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tB/A\tB/floor\t")
	for _, row := range r.Ingest {
		for _, x := range []struct {
			name string
			t    Throughput
		}{{"A jetstream", row.Ceiling}, {"B ingest", row.Ingest}, {"floor", row.Floor}} {
			ratio, floorRatio := "", ""
			if x.name == "B ingest" {
				ratio, floorRatio = fmt.Sprintf("%.3f", row.Ratio), fmt.Sprintf("%.3f", row.FloorRatio)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", x.name, row.Concurrency, x.t.OK, x.t.Failed,
				x.t.PerSecond, x.t.Latency.P50, x.t.Latency.P90, x.t.Latency.P99, x.t.Latency.Max, ratio, floorRatio)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)

	if len(r.Delivery) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "end to end\twebhooks\ttriggers\tdelivered\tlost\tdup\tDLQ\tsend/s\tdeliver/s\tsteady/s\ttokens/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
		for _, d := range r.Delivery {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", d.Name, d.Accepted, d.Expected, d.Delivered,
				d.Lost, d.Duplicates, d.DeadLettered, d.SendRate, d.DeliverRate, d.SteadyRate, d.SteadyTokenRate,
				d.Latency.P50, d.Latency.P90, d.Latency.P99, d.Latency.Max)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}

	r.writeCPU(w)
	if len(r.Delivery) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "latency by stage (p50 / p99 ms)	sent→CLERK	CLERK→NOVU	NOVU→Novu	total	")
		for _, d := range r.Delivery {
			if d.Stages == nil {
				continue
			}
			s := d.Stages
			fmt.Fprintf(tw, "%s	%.2f / %.2f	%.2f / %.2f	%.2f / %.2f	%.2f / %.2f	\n", d.Name, s.Receiver.P50, s.Receiver.P99,
				s.Router.P50, s.Router.P99, s.Sink.P50, s.Sink.P99, d.Latency.P50, d.Latency.P99)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}

	if r.hasMemory() {
		names := r.serviceNames()
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "peak RSS MiB\t%s\t\n", strings.Join(names, "\t"))
		row := func(label string, mem map[string]Memory) {
			cells := make([]string, len(names))
			for i, n := range names {
				cells[i] = fmt.Sprintf("%.1f", mem[n].PeakMiB)
			}
			fmt.Fprintf(tw, "%s\t%s\t\n", label, strings.Join(cells, "\t"))
		}
		for _, x := range r.Ingest {
			row(fmt.Sprintf("B ingest c=%d", x.Concurrency), x.Memory)
		}
		for _, d := range r.Delivery {
			row(d.Name, d.Memory)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}

	for _, t := range r.Targets {
		mark := "MET   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "%s %s: want %s, got %s\n", mark, t.Name, t.Want, t.Got)
	}
	for _, d := range r.Delivery {
		if d.Error != "" {
			fmt.Fprintf(w, "note: %s: %s\n", d.Name, d.Error)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "note: %s\n", e)
	}
}

func (r *Report) hasMemory() bool { return len(r.serviceNames()) > 0 }

func (r *Report) serviceNames() []string {
	set := map[string]bool{}
	for _, x := range r.Ingest {
		for n := range x.Memory {
			set[n] = true
		}
	}
	for _, d := range r.Delivery {
		for n := range d.Memory {
			set[n] = true
		}
	}
	order := []string{"receiver", "router", "novu-sink", natsServerName}
	var out []string
	for _, n := range order {
		if set[n] {
			out = append(out, n)
		}
	}
	return out
}

// writeCPU prints each process's CPU time per message (and cores used) in
// every phase.
func (r *Report) writeCPU(w io.Writer) {
	order := []string{benchProcessName, "receiver", floorProcessName, "router", "novu-sink", natsServerName, "total"}
	present := map[string]bool{}
	type line struct {
		label string
		cpu   map[string]CPUUse
	}
	var lines []line
	for _, row := range r.Ingest {
		lines = append(lines, line{fmt.Sprintf("A jetstream c=%d", row.Concurrency), row.Ceiling.CPU},
			line{fmt.Sprintf("B ingest c=%d", row.Concurrency), row.Ingest.CPU},
			line{fmt.Sprintf("floor c=%d", row.Concurrency), row.Floor.CPU})
	}
	for _, d := range r.Delivery {
		lines = append(lines, line{d.Name, d.CPU})
	}
	for _, l := range lines {
		for n := range l.cpu {
			present[n] = true
		}
	}
	var names []string
	for _, n := range order {
		if present[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "CPU µs/msg (cores)\t%s\t\n", strings.Join(names, "\t"))
	for _, l := range lines {
		cells := make([]string, len(names))
		for i, n := range names {
			u, ok := l.cpu[n]
			if !ok {
				cells[i] = "-"
				continue
			}
			cells[i] = fmt.Sprintf("%.1f (%.2f)", u.MicrosPerMsg, u.Cores)
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", l.label, strings.Join(cells, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w)
}
