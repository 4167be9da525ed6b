package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantPort  int
		wantDir   string
		wantAddr  string
		wantUsage bool
	}{
		{name: "defaults", wantPort: 4222, wantDir: ".devstack", wantAddr: "127.0.0.1:8080"},
		{name: "env", env: map[string]string{"DEVSTACK_NATS_PORT": "14222", "DEVSTACK_DIR": "/tmp/x", "DEVSTACK_RECEIVER_ADDR": ":9090"},
			wantPort: 14222, wantDir: "/tmp/x", wantAddr: ":9090"},
		{name: "flags over env", args: []string{"-nats-port", "0", "-receiver-addr", "127.0.0.1:0"}, env: map[string]string{"DEVSTACK_NATS_PORT": "14222"},
			wantPort: 0, wantDir: ".devstack", wantAddr: "127.0.0.1:0"},
		{name: "bad port", args: []string{"-nats-port", "http"}, wantUsage: true},
		{name: "port too big", env: map[string]string{"DEVSTACK_NATS_PORT": "70000"}, wantUsage: true},
		{name: "stray argument", args: []string{"user.created"}, wantUsage: true},
		{name: "unknown flag", args: []string{"-port", "1"}, wantUsage: true},
		{name: "empty dir", args: []string{"-dir", ""}, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			var ue usageError
			if tt.wantUsage {
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if o.NATSPort != tt.wantPort || o.Dir != tt.wantDir || o.ReceiverAddr != tt.wantAddr {
				t.Errorf("port %d dir %q receiver %q, want %d %q %q", o.NATSPort, o.Dir, o.ReceiverAddr, tt.wantPort, tt.wantDir, tt.wantAddr)
			}
		})
	}
}

// runOnce runs devstack on free ports until its banner shows, then stops it
// as Ctrl-C would, and returns its output.
func runOnce(t *testing.T, dir string, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out eventstest.SyncBuffer
	done := make(chan error, 1)
	args := []string{"-dir", dir, "-nats-port", "0", "-receiver-addr", "127.0.0.1:0", "-router-addr", "127.0.0.1:0", "-sink-addr", "127.0.0.1:0"}
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, &out) }()
	eventstest.Eventually(t, 20*time.Second, "the banner", func() bool {
		select {
		case err := <-done:
			t.Fatalf("devstack stopped before its banner: %v\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "devstack is running")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devstack: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("devstack did not stop\n%s", out.String())
	}
	return out.String()
}

func TestRunKeepsSecretAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devstack")
	env := map[string]string{"LOG_LEVEL": "warn"}
	first := runOnce(t, dir, env)
	b, err := os.ReadFile(filepath.Join(dir, stack.SecretFileName))
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	secret := strings.TrimSpace(string(b))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret file holds %q, want whsec_...", secret)
	}
	for _, want := range []string{"/webhooks/clerk", secret, "dry-run", "go run ./deploy/send user.created", "sub 'clerk.>'", "sub 'novu.trigger.>'", "clerknovu status", "clerknovu routes put"} {
		if !strings.Contains(first, want) {
			t.Errorf("banner lacks %q:\n%s", want, first)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("JetStream store not kept in %s: %v", dir, err)
	}

	second := runOnce(t, dir, env)
	if !strings.Contains(second, secret) {
		t.Errorf("restart did not reuse the secret %s:\n%s", secret, second)
	}
}

func TestRunSecretFromEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devstack")
	mine, err := stack.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	out := runOnce(t, dir, map[string]string{"LOG_LEVEL": "warn", stack.SigningSecretEnv: mine, "NOVU_SECRET_KEY": "k", "NOVU_API_URL": "http://127.0.0.1:1"})
	if strings.Contains(out, mine) {
		t.Errorf("the secret from the environment was printed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, stack.SecretFileName)); err == nil {
		t.Errorf("a secret file was written although the environment set one")
	}
	if !strings.Contains(out, "http://127.0.0.1:1") || strings.Contains(out, "dry-run") {
		t.Errorf("with NOVU_SECRET_KEY set, Novu calls should go to NOVU_API_URL:\n%s", out)
	}
}

func TestRunConfigError(t *testing.T) {
	err := run(t.Context(), []string{"-dir", t.TempDir(), "-nats-port", "0", "-receiver-addr", "127.0.0.1:0", "-router-addr", "127.0.0.1:0", "-sink-addr", "127.0.0.1:0"},
		func(k string) string { return map[string]string{"ROUTER_CONCURRENCY": "many"}[k] }, io.Discard)
	var ce *stack.ConfigError
	if !errors.As(err, &ce) || ce.Service != "router" || !strings.Contains(err.Error(), "ROUTER_CONCURRENCY") {
		t.Fatalf("err = %v, want a router configuration error naming ROUTER_CONCURRENCY", err)
	}
}
