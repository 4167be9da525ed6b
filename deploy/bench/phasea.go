package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Phase A publishes into its own stream, configured like CLERK.
const (
	ceilingStream  = "BENCH_CEILING"
	ceilingSubject = "bench.ceiling."
)

// Throughput is the result of one closed-loop phase at one concurrency.
type Throughput struct {
	Concurrency int     `json:"concurrency"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	// Latency is per request: publish to PubAck (A), request to response (B).
	Latency Latency `json:"latency"`
	// CPU is each process's CPU time during the phase, per message.
	CPU map[string]CPUUse `json:"cpu,omitempty"`
	// FirstError is the first failure, if any.
	FirstError string `json:"first_error,omitempty"`
}

// ceilingStreamConfig is CLERK's configuration (file storage, same dedupe
// window and limits) under another name and subject.
func ceilingStreamConfig() jetstream.StreamConfig {
	cfg := events.ClerkStream()
	cfg.Name = ceilingStream
	cfg.Description = "bench phase A: raw JetStream publishes, configured like " + events.StreamClerk
	cfg.Subjects = []string{ceilingSubject + ">"}
	return cfg
}

// phaseCeiling is phase A: concurrency goroutines on one connection, each
// publishing a body of the mix with a unique Nats-Msg-Id and waiting for its
// PubAck before the next (what `nats bench js pub sync` measures), for d.
func phaseCeiling(ctx context.Context, nc *nats.Conn, bodies []webhook, concurrency int, d time.Duration, pids map[string]int) (Throughput, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return Throughput{}, err
	}
	cfg := ceilingStreamConfig()
	_ = js.DeleteStream(ctx, cfg.Name)
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return Throughput{}, fmt.Errorf("phase A: create stream %s: %w", cfg.Name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, cfg.Name)
	}()
	var seq atomic.Int64
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	publish := func(ctx context.Context) (time.Duration, error) {
		i := seq.Add(1)
		w := bodies[int(i)%len(bodies)]
		id := "bench-a-" + strconv.FormatInt(i, 10)
		// The headers the receiver sets, so both phases publish the same bytes.
		msg := &nats.Msg{
			Subject: ceilingSubject + w.eventType,
			Header: nats.Header{
				jetstream.MsgIDHeader:      {id},
				events.SvixIDHeader:        {id},
				events.SvixTimestampHeader: {ts},
				events.EventTypeHeader:     {w.eventType},
				events.ReceivedAtHeader:    {strconv.FormatInt(time.Now().UnixMilli(), 10)},
			},
			Data: w.body,
		}
		start := time.Now()
		_, err := js.PublishMsg(ctx, msg)
		return time.Since(start), err
	}
	// Warm up: connections, stream files, the runtime.
	if err := closedLoop(ctx, concurrency, 0, 200, publish).err(); err != nil {
		return Throughput{}, fmt.Errorf("phase A warm-up: %w", err)
	}
	meter := startCPU(pids)
	res := closedLoop(ctx, concurrency, d, 0, publish)
	t := res.throughput(concurrency)
	t.CPU = meter.stop(t.OK)
	return t, nil
}

// loopResult gathers what the workers of [closedLoop] saw.
type loopResult struct {
	mu       sync.Mutex
	ok, fail int
	lat      []time.Duration
	firstErr error
	elapsed  time.Duration
}

func (r *loopResult) err() error {
	if r.ok == 0 && r.firstErr != nil {
		return r.firstErr
	}
	return nil
}

func (r *loopResult) throughput(concurrency int) Throughput {
	t := Throughput{
		Concurrency: concurrency,
		OK:          r.ok,
		Failed:      r.fail,
		Seconds:     float64(r.elapsed.Milliseconds()) / 1000,
		PerSecond:   perSecond(r.ok, r.elapsed),
		Latency:     summarize(r.lat),
	}
	if r.firstErr != nil {
		t.FirstError = r.firstErr.Error()
	}
	return t
}

// closedLoop runs op from concurrency goroutines, each calling it again as soon
// as it returns, until d has passed (d > 0) or n calls were made in total
// (n > 0). It counts successes and failures and keeps the latency of each
// success.
func closedLoop(ctx context.Context, concurrency int, d time.Duration, n int, op func(context.Context) (time.Duration, error)) *loopResult {
	res := &loopResult{}
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	var issued atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			ok, fail := 0, 0
			var first error
			for ctx.Err() == nil {
				if n > 0 && issued.Add(1) > int64(n) {
					break
				}
				if d > 0 && !time.Now().Before(deadline) {
					break
				}
				took, err := op(ctx)
				if err != nil {
					fail++
					if first == nil {
						first = err
					}
					continue
				}
				ok++
				lat = append(lat, took)
			}
			res.mu.Lock()
			res.ok += ok
			res.fail += fail
			res.lat = append(res.lat, lat...)
			if res.firstErr == nil {
				res.firstErr = first
			}
			res.mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}
