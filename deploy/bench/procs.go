package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// servicePackages are the mains the bench builds, by service name.
var servicePackages = []struct{ name, pkg string }{
	{"receiver", "github.com/clerknovu/pipeline/services/receiver"},
	{"router", "github.com/clerknovu/pipeline/services/router"},
	{"novu-sink", "github.com/clerknovu/pipeline/services/novu-sink"},
}

// buildServices builds the three service mains into dir with one go build
// from the workspace root, and returns the binaries by service name.
func buildServices(ctx context.Context, workspace, dir string) (map[string]string, error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, s := range servicePackages {
		args = append(args, s.pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = workspace
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build the services: %w\n%s", err, out.String())
	}
	bins := map[string]string{}
	for _, s := range servicePackages {
		bins[s.name] = filepath.Join(dir, filepath.Base(s.pkg))
	}
	return bins, nil
}

// findWorkspace returns the directory of the go.work that dir ("" for the
// current directory) builds with.
func findWorkspace(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOWORK")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	w := strings.TrimSpace(string(out))
	if w == "" || w == "off" {
		return "", errors.New("no go.work found: run the bench from the repository (go run ./deploy/bench), or point -services-from at one")
	}
	return filepath.Dir(w), nil
}

// proc is one service running as a child process.
type proc struct {
	name    string
	baseURL string
	// altURL, when set, is also polled for /readyz (an older receiver
	// serves it on its webhook address).
	altURL  string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startProc starts bin with env (on top of a minimal base environment) and
// its output in logDir/<name>.log.
func startProc(name, bin, addr string, env []string, logDir string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, baseURL: "http://" + addr, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// baseEnv passes on only what a Go program needs from the bench's environment,
// so a NATS_URL or NOVU_* of the caller's shell never reaches the services.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func(base string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for {
		if ready(p.baseURL) || (p.altURL != "" && ready(p.altURL)) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready after %v (GET %s/readyz): %s", p.name, timeout, p.baseURL, p.logTail())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits, killing after timeout.
func (p *proc) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			return fmt.Errorf("%s: %w", p.name, p.err)
		}
		if p.err != nil {
			return fmt.Errorf("%s: exited with %v after SIGTERM: %s", p.name, p.err, p.logTail())
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s: killed, not stopped %v after SIGTERM", p.name, timeout)
	}
}

// logTail returns the last lines of the service's output.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
