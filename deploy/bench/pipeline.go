package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ways to run the services.
const (
	// modeExec runs each service as its own process, built with go build, so
	// each one's resident memory can be read.
	modeExec = "exec"
	// modeInProc runs them in the bench's process through deploy/stack (no
	// build, no per-service memory): the smoke test's mode.
	modeInProc = "inproc"
)

// Each service's ops listen address setting (/readyz, /metrics, pprof).
var addrEnv = map[string]string{"receiver": "RECEIVER_OPS_ADDR", "router": "ROUTER_OPS_ADDR", "novu-sink": "SINK_OPS_ADDR"}

// legacyAddrEnv is the router's and the sink's ops address setting before
// the *_OPS_ADDR names, set instead for -services-from checkouts that
// predate them (today's services refuse it at start; see [usesLegacyAddrs]).
// An older receiver serves /readyz on its webhook address, which
// [proc.waitReady] also polls.
var legacyAddrEnv = map[string]string{"router": "ROUTER_ADDR", "novu-sink": "SINK_ADDR"}

// usesLegacyAddrs reports whether the router of the workspace at ws
// predates ROUTER_OPS_ADDR (no Go file under services/router names it).
func usesLegacyAddrs(ws string) bool {
	found := false
	_ = filepath.WalkDir(filepath.Join(ws, "services", "router"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || found || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(addrEnv["router"])) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return !found
}

// receiverAddrEnv is the receiver's webhook listen address setting.
const receiverAddrEnv = "RECEIVER_ADDR"

// natsServerName names the JetStream server in memory reports.
const natsServerName = "nats-server"

// pprofEnv turns on the receiver's pprof, on its ops address.
const pprofEnv = "RECEIVER_PPROF"

// receiverPath is where the receiver takes webhooks (its RECEIVER_PATH default).
const receiverPath = "/webhooks/clerk"

// pipeline is the system under test, started with one set of settings.
type pipeline struct {
	natsURL    string
	webhookURL string
	// receiverURL is the receiver's ops base URL.
	receiverURL string
	nc          *nats.Conn
	js          jetstream.JetStream
	procs       []*proc
	stack       *stack.Stack
	// natsPID is the JetStream server's process id when it runs as a child.
	natsPID int
}

// pids returns the process id of each service run as a process.
func (p *pipeline) pids() map[string]int {
	out := map[string]int{}
	for _, pr := range p.procs {
		out[pr.name] = pr.cmd.Process.Pid
	}
	if p.natsPID > 0 {
		out[natsServerName] = p.natsPID
	}
	return out
}

// close stops the services, in the order receiver, router, sink.
func (p *pipeline) close() error {
	var errs []error
	if p.nc != nil {
		p.nc.Close()
	}
	for _, pr := range p.procs {
		if err := pr.stop(30 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if p.stack != nil {
		if err := p.stack.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// launcher starts pipelines in one mode.
type launcher struct {
	mode    string
	natsArg string
	// from is the workspace to build the services from, "" for the current one.
	from   string
	dir    string
	logDir string
	bins   map[string]string
	// legacyAddrs: the services built are older than the *_OPS_ADDR names.
	legacyAddrs bool
	// nats is the server of exec mode, shared by every pipeline it starts.
	nats *natsServer
}

// where says where NATS runs, for the report.
func (l *launcher) where() string {
	if l.mode == modeInProc {
		return "embedded in the bench process (deploy/stack), one server per pipeline start"
	}
	if l.nats != nil {
		return l.nats.Where
	}
	return l.natsArg
}

// prepare builds the services and starts the JetStream server (exec mode).
func (l *launcher) prepare(ctx context.Context, log func(string, ...any)) error {
	if l.mode != modeExec {
		return nil
	}
	ws, err := findWorkspace(ctx, l.from)
	if err != nil {
		return err
	}
	start := time.Now()
	binDir := l.dir + "/bin"
	if err := os.MkdirAll(binDir, 0o700); err != nil {
		return err
	}
	if l.bins, err = buildServices(ctx, ws, binDir); err != nil {
		return err
	}
	l.legacyAddrs = usesLegacyAddrs(ws)
	log("built the services in %v", time.Since(start).Round(10*time.Millisecond))
	l.nats, err = startNATS(ctx, l.natsArg, l.dir+"/jetstream")
	return err
}

// shutdown stops the JetStream server of exec mode.
func (l *launcher) shutdown() error {
	if l.nats != nil {
		return l.nats.Stop()
	}
	return nil
}

// start starts the three services with env (on top of their defaults) and
// connects the bench to their NATS server.
func (l *launcher) start(ctx context.Context, env map[string]string) (*pipeline, error) {
	var p *pipeline
	var err error
	if l.mode == modeInProc {
		p, err = l.startInProc(ctx, env)
	} else {
		p, err = l.startExec(ctx, env)
	}
	if err != nil {
		return nil, err
	}
	p.nc, err = nats.Connect(p.natsURL, nats.Name("bench"))
	if err == nil {
		p.js, err = jetstream.New(p.nc)
	}
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("bench connection to NATS: %w", err)
	}
	return p, nil
}

func (l *launcher) startInProc(ctx context.Context, env map[string]string) (*pipeline, error) {
	st, err := stack.Start(ctx, stack.Options{Dir: "", Env: env, ReadyTimeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &pipeline{natsURL: st.NATSURL, webhookURL: st.WebhookURL, receiverURL: st.ReceiverOpsURL, stack: st}, nil
}

func (l *launcher) startExec(ctx context.Context, env map[string]string) (*pipeline, error) {
	p := &pipeline{natsURL: l.nats.URL, natsPID: l.nats.PID}
	common := maps.Clone(env)
	common["NATS_URL"] = l.nats.URL
	var mu sync.Mutex
	var errs []error
	for _, s := range servicePackages {
		addr, err := freeAddr()
		if err != nil {
			_ = p.close()
			return nil, err
		}
		vars := maps.Clone(common)
		vars[addrEnv[s.name]] = addr
		if legacy, ok := legacyAddrEnv[s.name]; ok && l.legacyAddrs {
			vars[legacy] = addr
		}
		webhookAddr := ""
		if s.name == "receiver" {
			if webhookAddr, err = freeAddr(); err != nil {
				_ = p.close()
				return nil, err
			}
			vars[receiverAddrEnv] = webhookAddr
		} else {
			delete(vars, pprofEnv)
		}
		keys := slices.Sorted(maps.Keys(vars))
		list := make([]string, 0, len(keys))
		for _, k := range keys {
			list = append(list, k+"="+vars[k])
		}
		pr, err := startProc(s.name, l.bins[s.name], addr, list, l.logDir)
		if err != nil {
			_ = p.close()
			return nil, err
		}
		p.procs = append(p.procs, pr)
		if s.name == "receiver" {
			p.receiverURL = pr.baseURL
			pr.altURL = "http://" + webhookAddr
			p.webhookURL = "http://" + webhookAddr + receiverPath
		}
	}
	var wg sync.WaitGroup
	for _, pr := range p.procs {
		wg.Go(func() {
			if err := pr.waitReady(ctx, 30*time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = p.close()
		return nil, err
	}
	return p, nil
}

// waitIdle waits until the router and the sink have nothing pending or
// unacknowledged, at most timeout.
func (p *pipeline) waitIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		busy, err := p.pending(ctx)
		if err == nil && busy == "" {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("pipeline not idle after %v: %w", timeout, err)
			}
			return fmt.Errorf("pipeline not idle after %v: %s", timeout, busy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pending describes the messages the consumers have not finished, "" when none.
func (p *pipeline) pending(ctx context.Context) (string, error) {
	var busy []string
	for _, d := range []events.Consumer{events.RouterConsumer(), events.SinkConsumer()} {
		durable := d.Config.Durable
		c, err := p.js.Consumer(ctx, d.Stream, durable)
		if err != nil {
			return "", err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return "", err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			busy = append(busy, fmt.Sprintf("%s: %d pending, %d unacked", durable, info.NumPending, info.NumAckPending))
		}
	}
	return strings.Join(busy, "; "), nil
}

// streamMsgs returns how many messages stream holds.
func (p *pipeline) streamMsgs(ctx context.Context, stream string) (uint64, error) {
	s, err := p.js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}
