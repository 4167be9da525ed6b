package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	good := writeFile(t, "routes.yaml", "rules:\n  - match: role.*\n    workflows: [roles]\n    to: {topicKey: security}\n")
	bad := writeFile(t, "bad.yaml", "rules:\n  - match: user.created\n    workflows: [\"user created\"]\n")
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			check: func(t *testing.T, c Config) {
				want := Config{Addr: ":8081", DefaultLocale: "en_US", Concurrency: 16, MaxDeliver: 10, AckWait: 30 * time.Second,
					PublishTimeout: 5 * time.Second, BackoffMin: time.Second, BackoffMax: time.Minute, ShutdownTimeout: 20 * time.Second}
				c.NATS, c.Log = service.NATSConfig{}, service.LogConfig{}
				if c != want {
					t.Errorf("config =\n%+v\nwant\n%+v", c, want)
				}
			},
		},
		{
			name: "every setting",
			env: map[string]string{
				"ROUTER_OPS_ADDR": "127.0.0.1:9091", "ROUTES_FILE": good, "ROUTES_KV_BUCKET": "ROUTES", "DEFAULT_LOCALE": "fr-FR",
				"ROUTER_CONCURRENCY": "4", "ROUTER_MAX_DELIVER": "3", "ROUTER_ACK_WAIT": "1m", "ROUTER_PUBLISH_TIMEOUT": "2s",
				"ROUTER_BACKOFF_MIN": "50ms", "ROUTER_BACKOFF_MAX": "2s", "SHUTDOWN_TIMEOUT": "3s",
				"NATS_URL": "nats://127.0.0.1:4333", "NATS_PROVISION": "false", "LOG_FORMAT": "text",
			},
			check: func(t *testing.T, c Config) {
				want := Config{Addr: "127.0.0.1:9091", RoutesFile: good, RoutesKVBucket: "ROUTES", DefaultLocale: "fr-FR", Concurrency: 4,
					MaxDeliver: 3, AckWait: time.Minute, PublishTimeout: 2 * time.Second, BackoffMin: 50 * time.Millisecond,
					BackoffMax: 2 * time.Second, ShutdownTimeout: 3 * time.Second}
				if c.NATS.URL != "nats://127.0.0.1:4333" || c.NATS.Provision || c.Log.Format != "text" {
					t.Errorf("NATS/Log = %+v %+v", c.NATS, c.Log)
				}
				c.NATS, c.Log = service.NATSConfig{}, service.LogConfig{}
				if c != want {
					t.Errorf("config =\n%+v\nwant\n%+v", c, want)
				}
			},
		},
		{name: "zero concurrency", env: map[string]string{"ROUTER_CONCURRENCY": "0"}, wantErr: []string{"ROUTER_CONCURRENCY: want at least 1"}},
		{name: "old ops address name", env: map[string]string{"ROUTER_ADDR": ":9191"}, wantErr: []string{"ROUTER_ADDR: replaced by ROUTER_OPS_ADDR"}},
		{name: "max deliver not a number", env: map[string]string{"ROUTER_MAX_DELIVER": "ten"}, wantErr: []string{"ROUTER_MAX_DELIVER: want a whole number"}},
		{name: "bad ack wait", env: map[string]string{"ROUTER_ACK_WAIT": "soon"}, wantErr: []string{"ROUTER_ACK_WAIT: want a duration"}},
		{name: "ack wait too short", env: map[string]string{"ROUTER_ACK_WAIT": "5s"}, wantErr: []string{"ROUTER_ACK_WAIT: must exceed twice ROUTER_PUBLISH_TIMEOUT"}},
		{name: "backoff bounds crossed", env: map[string]string{"ROUTER_BACKOFF_MIN": "2m"}, wantErr: []string{"ROUTER_BACKOFF_MIN: must not exceed ROUTER_BACKOFF_MAX"}},
		{name: "bad locale", env: map[string]string{"DEFAULT_LOCALE": "english please"}, wantErr: []string{`DEFAULT_LOCALE: want a locale such as en_US or fr-FR, got "english please"`}},
		{name: "bad bucket", env: map[string]string{"ROUTES_KV_BUCKET": "my.routes"}, wantErr: []string{"ROUTES_KV_BUCKET: want a bucket name"}},
		{name: "bad address", env: map[string]string{"ROUTER_OPS_ADDR": "8081"}, wantErr: []string{"ROUTER_OPS_ADDR: want host:port"}},
		{name: "missing rules file", env: map[string]string{"ROUTES_FILE": "/nonexistent/routes.yaml"}, wantErr: []string{`ROUTES_FILE: cannot read "/nonexistent/routes.yaml"`}},
		{name: "invalid rules file", env: map[string]string{"ROUTES_FILE": bad},
			wantErr: []string{"ROUTES_FILE: invalid routing rules: file " + bad + `: rule 1 (line 2, match "user.created"): workflow "user created" is not a valid workflow id`}},
		{name: "several problems at once", env: map[string]string{"ROUTER_CONCURRENCY": "-1", "NATS_URL": "localhost"},
			wantErr: []string{"ROUTER_CONCURRENCY", "NATS_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(env(tt.env))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("LoadConfig succeeded, want an error saying %q", tt.wantErr)
			}
			line := service.OneLine(err)
			for _, w := range tt.wantErr {
				if !strings.Contains(line, w) {
					t.Errorf("error %q does not say %q", line, w)
				}
			}
		})
	}
}

func TestSetDefaultsThenValidate(t *testing.T) {
	var c Config
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("zero Config with defaults: %v", err)
	}
	if c.NATS.URL != service.DefaultNATSURL || c.Concurrency != DefaultConcurrency {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// TestValidate: a Config built in code gets the defaults for its zero fields
// and the same one-line problems as LoadConfig, each naming the variable.
func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		given   Config
		wantErr string
	}{
		{name: "zero config", given: Config{}},
		{name: "ack wait against the default publish timeout", given: Config{AckWait: time.Second}, wantErr: "ROUTER_ACK_WAIT: must exceed twice ROUTER_PUBLISH_TIMEOUT (5s"},
		{name: "too much concurrency", given: Config{Concurrency: 5000}, wantErr: "ROUTER_CONCURRENCY: want 1 to 4096, got 5000"},
		{name: "negative max deliver", given: Config{MaxDeliver: -1}, wantErr: "ROUTER_MAX_DELIVER: want at least 1, got -1"},
		{name: "backoff bounds crossed", given: Config{BackoffMin: time.Minute, BackoffMax: time.Second}, wantErr: "ROUTER_BACKOFF_MIN: must not exceed ROUTER_BACKOFF_MAX (1s)"},
		{name: "address without port", given: Config{Addr: "localhost"}, wantErr: `ROUTER_OPS_ADDR: want host:port such as :8081, got "localhost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.given.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != service.OneLine(err) || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want the one line %q...", err, tt.wantErr)
			}
		})
	}
}
