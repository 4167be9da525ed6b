package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// floorSubject is where the floor stores webhooks: in stream CLERK, which
// phase B purges after, on a subject the router's filter never sees routed.
const floorSubject = events.ClerkSubjectPrefix + "bench.floor"

// floorServer is the floor phase's server: a bare net/http handler that reads
// the body and stores it with the receiver's asynchronous JetStream publish
// (Nats-Msg-Id = svix-id, the receiver's headers) and answers 200 after the
// PubAck. No verification, no parsing: what storing a webhook costs at least.
// It runs in the bench process, on its own NATS connection.
type floorServer struct {
	url  string
	srv  *http.Server
	nc   *nats.Conn
	bufs sync.Pool
}

func startFloor(natsURL string) (*floorServer, error) {
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
	f.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		id := r.Header.Get("Svix-Id")
		msg := &nats.Msg{Subject: floorSubject, Data: buf.Bytes(), Header: nats.Header{
			jetstream.MsgIDHeader:      {id},
			events.SvixIDHeader:        {id},
			events.SvixTimestampHeader: {r.Header.Get("Svix-Timestamp")},
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
	})}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *floorServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = f.srv.Close()
	}
	f.nc.Close()
}
