package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// floorSubject is where the floor stores webhooks: in stream CLERK, which
// the bench purges after each ingest row, while the router's consumer is
// paused.
const floorSubject = events.ClerkSubjectPrefix + floorEventType

// floorEventType is the event type the floor's messages carry.
const floorEventType = "bench.floor"

// floorServer is the floor phase's server: a bare net/http handler that reads
// the body and stores it with the receiver's asynchronous JetStream publish
// (Nats-Msg-Id = svix-id, the receiver's five headers) and answers 200 after the
// PubAck. No verification, no parsing: what storing a webhook costs at least.
// In exec mode it runs as a child process of its own, as the receiver does
// ([startFloorChild]), so neither shares a Go runtime with the load
// generator; in-process otherwise (the smoke test).
type floorServer struct {
	url  string
	srv  *http.Server
	nc   *nats.Conn
	bufs sync.Pool
}

// startFloor serves the floor in this process.
func startFloor(natsURL string) (*floor, error) {
	nc, err := nats.Connect(natsURL, nats.Name("bench-floor"))
	if err != nil {
		return nil, fmt.Errorf("floor: connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	f := &floorServer{url: "http://" + ln.Addr().String() + receiverPath, nc: nc}
	mux := http.NewServeMux()
	// The floor's CPU profile, to set beside the receiver's (-pprof).
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	f.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: mux}
	mux.HandleFunc(receiverPath, func(w http.ResponseWriter, r *http.Request) {
		buf, _ := f.bufs.Get().(*bytes.Buffer)
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		defer f.bufs.Put(buf)
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		// The five headers the receiver sets, so that both store messages
		// of the same size; with no parsing, the type is a fixed one.
		id := r.Header.Get("Svix-Id")
		msg := &nats.Msg{Subject: floorSubject, Data: buf.Bytes(), Header: nats.Header{
			jetstream.MsgIDHeader:      {id},
			events.SvixIDHeader:        {id},
			events.SvixTimestampHeader: {r.Header.Get("Svix-Timestamp")},
			events.EventTypeHeader:     {floorEventType},
			events.ReceivedAtHeader:    {strconv.FormatInt(time.Now().UnixMilli(), 10)},
		}}
		paf, err := js.PublishMsgAsync(msg)
		if err == nil {
			select {
			case <-paf.Ok():
			case err = <-paf.Err():
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"accepted"}` + "\n"))
	})
	go func() { _ = f.srv.Serve(ln) }()
	return &floor{url: f.url, close: f.close}, nil
}

func (f *floorServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = f.srv.Close()
	}
	f.nc.Close()
}

// floorChildEnv, when set to a NATS URL, makes this binary run only the
// floor server against it: see [startFloorChild].
const floorChildEnv = "BENCH_FLOOR_CHILD_NATS"

// floor is a started floor server, in the bench process or a child.
type floor struct {
	url   string
	pid   int // of the child process; 0 in-process
	close func()
}

// floorProcessName names the floor's child process in CPU reports.
const floorProcessName = "floor"

// startFloorChild re-executes this binary with [floorChildEnv] set; the
// child serves the floor and prints its URL on the first line of stdout.
func startFloorChild(ctx context.Context, natsURL string) (*floor, error) {
	u, pid, stop, err := startChild(ctx, "floor child", floorChildEnv+"="+natsURL, "http://")
	if err != nil {
		return nil, err
	}
	return &floor{url: u, pid: pid, close: stop}, nil
}

// floorChildMain serves the floor for [startFloorChild] until SIGTERM or SIGINT.
func floorChildMain(natsURL string) int {
	f, err := startFloor(natsURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench floor child:", err)
		return 1
	}
	fmt.Println(f.url)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	f.close()
	return 0
}
