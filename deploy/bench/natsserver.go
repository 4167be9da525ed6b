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
	u, pid, stop, err := startChild(ctx, "nats child", natsChildEnv+"="+storeDir, "://")
	if err != nil {
		return nil, err
	}
	return &natsServer{URL: u, Where: "child process (this binary re-executed)", PID: pid, stop: func() error { stop(); return nil }}, nil
}

// startChild re-executes this binary with env added; the child prints its
// address on the first line of stdout, which must contain want. stop sends
// SIGTERM and waits (killing after 10 s).
func startChild(ctx context.Context, what, env, want string) (addr string, pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
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
		if !strings.Contains(u, want) {
			stop()
			return "", 0, nil, fmt.Errorf("%s: printed %q instead of an address", what, u)
		}
		return u, cmd.Process.Pid, stop, nil
	case err := <-done:
		return "", 0, nil, fmt.Errorf("%s exited: %v", what, err)
	case <-time.After(15 * time.Second):
		stop()
		return "", 0, nil, fmt.Errorf("%s: no address after 15s", what)
	case <-ctx.Done():
		stop()
		return "", 0, nil, ctx.Err()
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
