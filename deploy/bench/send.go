package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns an HTTP/1.1 client that keeps a connection per worker
// alive across requests.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4 * conns, // phase B's and the floor's, which take turns
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// errStatus reports a non-2xx answer.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string { return fmt.Sprintf("status %d: %s", e.code, e.body) }

// post sends one webhook and reads the whole answer; only a 2xx is success.
func post(ctx context.Context, client *http.Client, url string, w *webhook) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	req.Header = w.header
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return &errStatus{code: resp.StatusCode, body: string(bytes.TrimSpace(b))}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// maxAttempts bounds the deliveries of one webhook in the delivery phases: a
// refused webhook is retried with the same svix-id and signature, as Svix
// would, so a refusal is not a loss.
const maxAttempts = 5

// postRetry posts w until it gets a 2xx, at most [maxAttempts] times, 100 ms
// apart. It returns how many attempts failed, the first failure, and whether
// the webhook was accepted in the end.
func postRetry(ctx context.Context, client *http.Client, url string, w *webhook) (failed int, first error, ok bool) {
	for range maxAttempts {
		err := post(ctx, client, url, w)
		if err == nil {
			return failed, first, true
		}
		failed++
		if first == nil {
			first = err
		}
		select {
		case <-ctx.Done():
			return failed, first, false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return failed, first, false
}

// sendResult is what sending a set of webhooks gave.
type sendResult struct {
	// sentAt is when each webhook was (to be) sent: the scheduled time in an
	// open loop, so a slow answer delays no measurement.
	sentAt []time.Time
	// accepted reports the webhooks that got a 2xx.
	accepted []bool
	// answer is the time from send to the 2xx, per accepted webhook.
	answer []time.Duration
	// refusals counts failed attempts (each retried); failed counts webhooks
	// never accepted.
	refusals, failed int
	firstErr         error
	// lag is how late the sender started each webhook after its schedule.
	lag     []time.Duration
	elapsed time.Duration
}

// sendOpenLoop sends hooks at rate per second, on schedule whatever the
// answers, from workers goroutines.
func sendOpenLoop(ctx context.Context, client *http.Client, url string, hooks []webhook, rate float64, workers int) *sendResult {
	res := newSendResult(len(hooks))
	jobs := make(chan int, len(hooks))
	interval := time.Duration(float64(time.Second) / rate)
	t0 := time.Now().Add(20 * time.Millisecond)
	for i := range hooks {
		res.sentAt[i] = t0.Add(time.Duration(i) * interval)
	}
	go func() {
		defer close(jobs)
		for i := range hooks {
			if d := time.Until(res.sentAt[i]); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			jobs <- i
		}
	}()
	res.run(ctx, workers, func(ctx context.Context, _ int) (int, bool) {
		i, ok := <-jobs
		if ok {
			res.lag[i] = time.Since(res.sentAt[i])
		}
		return i, ok
	}, client, url, hooks)
	res.elapsed = time.Since(t0)
	return res
}

// sendClosedLoop sends hooks as fast as concurrency workers can, each
// sending the next webhook once its previous one is answered.
func sendClosedLoop(ctx context.Context, client *http.Client, url string, hooks []webhook, concurrency int) *sendResult {
	res := newSendResult(len(hooks))
	var next atomic.Int64
	start := time.Now()
	res.run(ctx, concurrency, func(context.Context, int) (int, bool) {
		i := int(next.Add(1)) - 1
		if i >= len(hooks) {
			return 0, false
		}
		res.sentAt[i] = time.Now()
		return i, true
	}, client, url, hooks)
	res.elapsed = time.Since(start)
	return res
}

func newSendResult(n int) *sendResult {
	return &sendResult{
		sentAt:   make([]time.Time, n),
		accepted: make([]bool, n),
		answer:   make([]time.Duration, n),
		lag:      make([]time.Duration, n),
	}
}

// run posts the webhooks that next hands out from workers goroutines.
func (r *sendResult) run(ctx context.Context, workers int, next func(context.Context, int) (int, bool), client *http.Client, url string, hooks []webhook) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i, ok := next(ctx, w)
				if !ok {
					return
				}
				failed, first, ok := postRetry(ctx, client, url, &hooks[i])
				if ok {
					r.accepted[i] = true
					r.answer[i] = time.Since(r.sentAt[i])
				}
				if failed > 0 {
					mu.Lock()
					r.refusals += failed
					if !ok {
						r.failed++
					}
					if r.firstErr == nil {
						r.firstErr = first
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}
