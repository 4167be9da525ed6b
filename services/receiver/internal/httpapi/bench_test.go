package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/receiver/internal/httpapi"
	"github.com/nats-io/nats.go/jetstream"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the handler rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// signedRequests returns n requests for distinct svix-ids, signed at fixedNow.
func signedRequests(b *testing.B, n int, body []byte) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, "/webhooks/clerk", nil)
		if err != nil {
			b.Fatal(err)
		}
		delivery{id: "msg_bench_" + strconv.Itoa(i), ts: fixedNow, body: body}.setHeaders(b, req.Header)
		req.ContentLength = int64(len(body))
		reqs[i] = req
	}
	return reqs
}

// BenchmarkHandler measures the hot path (read, verify, parse, build the
// message, publish, wait for the ack, answer) with a publisher that acks at once.
func BenchmarkHandler(b *testing.B) {
	body := []byte(fixtures["user.created"])
	h := newFakeHandler(b, &fakePublisher{mode: ackIt, discard: true})
	req := signedRequests(b, 1, body)[0]
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	req.Body = io.NopCloser(rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkHandlerJetStream runs the handler in parallel against an embedded
// JetStream server (memory storage), each request a new svix-id: what the
// receiver adds on top of a raw async publish, without the HTTP server.
func BenchmarkHandlerJetStream(b *testing.B) {
	body := []byte(fixtures["user.created"])
	s := eventstest.RunServer(b, events.WithMemoryStorage())
	nc, _ := eventstest.Connect(b, s.ClientURL())
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	h := newFakeHandler(b, js, func(o *httpapi.Options) { o.PublishTimeout = 5 * time.Second })
	reqs := signedRequests(b, b.N, body)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.SetParallelism(8) // 8 × GOMAXPROCS webhooks in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			req := reqs[next.Add(1)-1]
			req.Body = io.NopCloser(bytes.NewReader(body))
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}
