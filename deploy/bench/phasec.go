package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
)

// Delivery is the result of one end-to-end phase: webhooks sent, triggers
// expected, and what the fake Novu received.
type Delivery struct {
	Name string `json:"name"`
	// Webhooks is how many were sent; Accepted how many got a 2xx (after at
	// most 5 attempts each, as Svix retries); Refusals counts non-2xx answers.
	Webhooks int `json:"webhooks"`
	Accepted int `json:"accepted"`
	Refusals int `json:"refusals"`
	// Expected is the number of triggers the routes make of the accepted
	// webhooks; Delivered how many of them Novu accepted; Lost = Expected -
	// Delivered; Duplicates counts extra deliveries of one transactionId;
	// Unexpected counts triggers no webhook called for.
	Expected   int `json:"expected_triggers"`
	Delivered  int `json:"delivered"`
	Lost       int `json:"lost"`
	Duplicates int `json:"duplicates"`
	Unexpected int `json:"unexpected"`
	// LostExamples and UnexpectedExamples name a few of each, to debug.
	LostExamples       []string `json:"lost_examples,omitempty"`
	UnexpectedExamples []string `json:"unexpected_examples,omitempty"`
	// DeadLettered is how many messages reached the DLQ stream during the phase.
	DeadLettered int `json:"dead_lettered"`
	// NovuCalls is the number of HTTP calls to the fake (bulk or single), and
	// NovuRefused how many it did not answer 201 (e.g. 429).
	NovuCalls   int64 `json:"novu_calls"`
	NovuBulk    int   `json:"novu_bulk_calls"`
	NovuRefused int   `json:"novu_refused"`
	// SendSeconds is how long sending took; SendRate webhooks per second.
	SendSeconds float64 `json:"send_seconds"`
	SendRate    float64 `json:"send_per_second"`
	// DeliverSeconds runs from the first webhook sent to the last trigger
	// received; DeliverRate is Delivered over it.
	DeliverSeconds float64 `json:"deliver_seconds"`
	DeliverRate    float64 `json:"deliver_per_second"`
	// SteadyRate is the delivery rate once the first quarter of the Novu
	// calls is past (so a rate limiter's burst allowance is excluded), and
	// SteadyTokenRate the same in Novu rate-limit tokens (1 per single
	// trigger, 100 per bulk call).
	SteadyRate      float64 `json:"steady_per_second"`
	SteadyTokenRate float64 `json:"steady_tokens_per_second"`
	// RateLimit is the sink's NOVU_RATE_LIMIT in this phase (0: off).
	RateLimit float64 `json:"rate_limit"`
	// Answer is webhook sent → 2xx; Latency is webhook sent → Novu request
	// received, per delivered trigger.
	Answer  Latency `json:"webhook_answer"`
	Latency Latency `json:"latency"`
	// Stages splits Latency at the streams.
	Stages *Stages `json:"stages,omitempty"`
	// CPU is each process's CPU time from the first webhook sent to the last
	// trigger received, per accepted webhook.
	CPU map[string]CPUUse `json:"cpu,omitempty"`
	// SenderLagMax is how late the open-loop sender got behind its schedule.
	SenderLagMax float64 `json:"sender_lag_max_ms,omitempty"`
	// Memory is each service's peak resident set during the phase.
	Memory map[string]Memory `json:"memory,omitempty"`
	// Error says why the phase is incomplete, if it is.
	Error string `json:"error,omitempty"`
}

// deliveryPlan says how one end-to-end phase sends.
type deliveryPlan struct {
	name        string
	hooks       []webhook
	rate        float64 // > 0: open loop at this rate
	concurrency int     // closed loop when rate is 0; open-loop workers otherwise
	rateLimit   float64
	// settle bounds the wait for the last trigger once nothing arrives any more.
	settle time.Duration
}

// runDelivery sends plan's webhooks through p and accounts for every trigger
// the fake Novu received.
func runDelivery(ctx context.Context, p *pipeline, fake *novufake.Server, client *http.Client, plan deliveryPlan) (Delivery, error) {
	d := Delivery{Name: plan.name, Webhooks: len(plan.hooks), RateLimit: plan.rateLimit}
	if err := p.waitIdle(ctx, 60*time.Second); err != nil {
		return d, err
	}
	fake.Reset()
	dlqBefore, err := p.streamMsgs(ctx, events.StreamDLQ)
	if err != nil {
		return d, fmt.Errorf("dlq: %w", err)
	}
	mark, err := p.markStreams(ctx, events.StreamClerk, events.StreamNovu)
	if err != nil {
		return d, err
	}
	// txid → webhook index, for every trigger the routes call for.
	expected := map[string]int{}
	for i, w := range plan.hooks {
		for _, wf := range w.workflows {
			expected[events.TransactionID(w.svixID, wf)] = i
		}
	}

	meter := startCPU(p.pids())
	var sent *sendResult
	if plan.rate > 0 {
		sent = sendOpenLoop(ctx, client, p.webhookURL, plan.hooks, plan.rate, plan.concurrency)
	} else {
		sent = sendClosedLoop(ctx, client, p.webhookURL, plan.hooks, plan.concurrency)
	}
	d.SendSeconds = seconds(sent.elapsed)
	d.Refusals = sent.refusals
	var answers []time.Duration
	for i, ok := range sent.accepted {
		if ok {
			d.Accepted++
			answers = append(answers, sent.answer[i])
			continue
		}
		// A webhook never accepted is not the pipeline's to deliver.
		for _, wf := range plan.hooks[i].workflows {
			delete(expected, events.TransactionID(plan.hooks[i].svixID, wf))
		}
	}
	d.SendRate = perSecond(d.Accepted, sent.elapsed)
	d.Answer = summarize(answers)
	d.SenderLagMax = ms(slices.Max(append(sent.lag, 0)))
	d.Expected = len(expected)
	if sent.failed > 0 {
		d.Error = fmt.Sprintf("%d webhooks never accepted, first refusal: %v", sent.failed, sent.firstErr)
	}

	// Wait until every expected trigger arrived, the consumers are idle, or
	// nothing has arrived for plan.settle.
	last, lastChange := int64(-1), time.Now()
	for {
		n := fake.AcceptedCount()
		if n != last {
			last, lastChange = n, time.Now()
		}
		if n >= int64(len(expected)) {
			// Everything arrived: give a duplicate a moment to show, then stop.
			if err := p.waitIdle(ctx, plan.settle); err != nil {
				return d, err
			}
			break
		}
		if time.Since(lastChange) > plan.settle {
			busy, _ := p.pending(ctx)
			d.Error = joinErr(d.Error, fmt.Sprintf("gave up waiting: %d of %d triggers after %v without progress (%s)", n, len(expected), plan.settle, busy))
			break
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}

	d.CPU = meter.stop(d.Accepted)
	d.NovuCalls = fake.Calls()
	d.NovuBulk = len(fake.BulkSizes())
	seen := map[string]int{}
	var lat []time.Duration
	var arrivals []time.Time
	type delivered struct {
		txid string
		hook int
		at   time.Time
	}
	var firsts []delivered
	firstSend := time.Time{}
	for i, at := range sent.sentAt {
		if sent.accepted[i] && (firstSend.IsZero() || at.Before(firstSend)) {
			firstSend = at
		}
	}
	calls := map[int64]string{}
	for _, t := range fake.Triggers() {
		if !t.Accepted() {
			if _, counted := calls[t.Call]; !counted {
				d.NovuRefused++
			}
			calls[t.Call] = "refused"
			continue
		}
		calls[t.Call] = t.Endpoint
		i, ok := expected[t.TransactionID]
		if !ok {
			d.Unexpected++
			if len(d.UnexpectedExamples) < 5 {
				d.UnexpectedExamples = append(d.UnexpectedExamples, t.Name)
			}
			continue
		}
		seen[t.TransactionID]++
		if seen[t.TransactionID] > 1 {
			d.Duplicates++
			continue
		}
		lat = append(lat, t.Received.Sub(sent.sentAt[i]))
		arrivals = append(arrivals, t.Received)
		firsts = append(firsts, delivered{t.TransactionID, i, t.Received})
	}
	d.Delivered = len(seen)
	d.Lost = d.Expected - d.Delivered
	for txid, i := range expected {
		if seen[txid] == 0 && len(d.LostExamples) < 5 {
			d.LostExamples = append(d.LostExamples, plan.hooks[i].sample+" "+plan.hooks[i].svixID)
		}
	}
	d.Latency = summarize(lat)
	if len(arrivals) > 0 {
		slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
		span := arrivals[len(arrivals)-1].Sub(firstSend)
		d.DeliverSeconds = seconds(span)
		d.DeliverRate = perSecond(d.Delivered, span)
		d.SteadyRate, d.SteadyTokenRate = steadyRates(fake.Triggers())
	}
	clerk, err := p.storedSince(ctx, events.StreamClerk, mark)
	if err != nil {
		return d, fmt.Errorf("read %s: %w", events.StreamClerk, err)
	}
	novu, err := p.storedSince(ctx, events.StreamNovu, mark)
	if err != nil {
		return d, fmt.Errorf("read %s: %w", events.StreamNovu, err)
	}
	var recv, route, sink []time.Duration
	for _, f := range firsts {
		w := &plan.hooks[f.hook]
		c, ok1 := clerk[w.svixID]
		n, ok2 := novu[f.txid]
		if !ok1 || !ok2 {
			continue
		}
		recv = append(recv, c.Sub(sent.sentAt[f.hook]))
		route = append(route, n.Sub(c))
		sink = append(sink, f.at.Sub(n))
	}
	if len(recv) > 0 {
		d.Stages = &Stages{Receiver: summarize(recv), Router: summarize(route), Sink: summarize(sink)}
	}
	dlqAfter, err := p.streamMsgs(ctx, events.StreamDLQ)
	if err != nil {
		return d, fmt.Errorf("dlq: %w", err)
	}
	d.DeadLettered = int(dlqAfter - dlqBefore)
	return d, nil
}

// steadyRates measures the delivery rate over the second half of the
// delivery, when whatever the sink could send at once (a rate limiter's burst
// allowance) is long spent: the triggers, and the Novu rate-limit tokens (a
// bulk call costs [novufake.BulkCost] whatever its size, a single trigger 1),
// of the calls after call j, over the time from call j to the last call,
// where j is the first call in the second half of the time between the first
// and the last.
func steadyRates(triggers []novufake.Trigger) (perSec, tokensPerSec float64) {
	type call struct {
		at       time.Time
		triggers int
		tokens   int
	}
	byCall := map[int64]*call{}
	for _, t := range triggers {
		if !t.Accepted() {
			continue
		}
		c := byCall[t.Call]
		if c == nil {
			c = &call{at: t.Received, tokens: 1}
			if t.Endpoint == novufake.EndpointBulk {
				c.tokens = novufake.BulkCost
			}
			byCall[t.Call] = c
		}
		c.triggers++
	}
	calls := slices.SortedFunc(maps.Values(byCall), func(a, b *call) int { return a.at.Compare(b.at) })
	if len(calls) < 4 {
		return 0, 0
	}
	first, last := calls[0].at, calls[len(calls)-1].at
	mid := first.Add(last.Sub(first) / 2)
	j := slices.IndexFunc(calls, func(c *call) bool { return !c.at.Before(mid) })
	span := last.Sub(calls[j].at)
	if j < 0 || span <= 0 {
		return 0, 0
	}
	n, tokens := 0, 0
	for _, c := range calls[j+1:] {
		n += c.triggers
		tokens += c.tokens
	}
	return perSecond(n, span), perSecond(tokens, span)
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
