package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsChildEnv, when set in the environment, makes this binary run only a
// JetStream server storing in the named directory (the "child" NATS mode).
const natsChildEnv = "BENCH_NATS_CHILD_STORE"

// natsServer is the JetStream server the bench runs against.
type natsServer struct {
	// URL is the client URL.
	URL string
	// Where says how it runs, for the report: embedded, child process or external.
	Where string
	// PID is the server's process id when it runs in a child process, else 0.
	PID  int
	stop func() error
}

// Stop shuts the server down if the bench started it.
func (n *natsServer) Stop() error {
	if n.stop == nil {
		return nil
	}
	return n.stop()
}

// startNATS starts or connects to the JetStream server named by mode:
// "embedded" (in this process), "child" (this binary re-executed as a server),
// or a nats:// URL of a running server.
func startNATS(ctx context.Context, mode, storeDir string) (*natsServer, error) {
	switch {
	case mode == "embedded":
		s, err := runEmbeddedNATS(storeDir)
		if err != nil {
			return nil, err
		}
		return &natsServer{URL: s.ClientURL(), Where: "embedded in the bench process", stop: func() error {
			s.Shutdown()
			s.WaitForShutdown()
			return nil
		}}, nil
	case mode == "child":
		return runChildNATS(ctx, storeDir)
	case strings.Contains(mode, "://"):
		return &natsServer{URL: mode, Where: "external server at " + mode}, nil
	}
	return nil, fmt.Errorf("-nats: want embedded, child or a nats:// URL, got %q", mode)
}

// runEmbeddedNATS starts a JetStream server on a random loopback port.
func runEmbeddedNATS(storeDir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		ServerName: "bench",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   storeDir,
		NoLog:      true,
		NoSigs:     true,
		// The default 1 MB would reject nothing here; the pipeline's bodies are a few KB.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server: not ready after 10s")
	}
	return s, nil
}

// runChildNATS re-executes this binary with [natsChildEnv] set; the child runs
// the server and prints its client URL on the first line of stdout.
func runChildNATS(ctx context.Context, storeDir string) (*natsServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("nats child: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), natsChildEnv+"="+storeDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("nats child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nats child: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return nil
	}
	urlc := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		urlc <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case u := <-urlc:
		if !strings.Contains(u, "://") {
			_ = stop()
			return nil, fmt.Errorf("nats child: printed %q instead of a URL", u)
		}
		return &natsServer{URL: u, Where: "child process (this binary re-executed)", PID: cmd.Process.Pid, stop: stop}, nil
	case err := <-done:
		return nil, fmt.Errorf("nats child exited: %v", err)
	case <-time.After(15 * time.Second):
		_ = stop()
		return nil, errors.New("nats child: no URL after 15s")
	case <-ctx.Done():
		_ = stop()
		return nil, ctx.Err()
	}
}

// natsChildMain runs the server for [runChildNATS] until SIGTERM or SIGINT.
func natsChildMain(storeDir string) int {
	s, err := runEmbeddedNATS(storeDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench nats child:", err)
		return 1
	}
	fmt.Println(s.ClientURL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}
