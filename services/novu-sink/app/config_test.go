package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "novu-key")
	if err := os.WriteFile(keyFile, []byte("sk_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		given   map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string // substrings of the error, one per problem
	}{
		{
			name:  "defaults",
			given: map[string]string{"NOVU_SECRET_KEY": "sk_test"},
			check: func(t *testing.T, c Config) {
				want := Config{
					Addr: ":8082", APIURL: "https://api.novu.co", SecretKey: "sk_test", Timeout: 10 * time.Second,
					AckWait: 30 * time.Second, RetryBase: time.Second, RetryMax: 5 * time.Minute, MaxDeliver: 20,
					BreakerFailures: 5, BreakerOpen: 30 * time.Second, RateLimit: 60, Sync: true, SyncRateLimit: 20, Bulk: true, BulkMin: 50,
					Concurrency: 16, FetchWait: time.Second, ShutdownTimeout: 20 * time.Second,
				}
				c.NATS, c.Log = want.NATS, want.Log
				if c != want {
					t.Errorf("config =\n%+v\nwant\n%+v", c, want)
				}
			},
		},
		{
			name: "everything set",
			given: map[string]string{
				"NOVU_SECRET_KEY": "sk_test", "SINK_OPS_ADDR": "127.0.0.1:9000", "NOVU_API_URL": "https://eu.api.novu.co",
				"NOVU_TIMEOUT": "20s", "NOVU_RETRY_BASE": "2s", "NOVU_RETRY_MAX": "1m", "NOVU_MAX_DELIVER": "7",
				"NOVU_BREAKER_FAILURES": "3", "NOVU_BREAKER_OPEN": "10s", "NOVU_RATE_LIMIT": "240", "NOVU_BULK": "false",
				"NOVU_BULK_MIN": "20", "NOVU_CONCURRENCY": "32", "NOVU_FETCH_WAIT": "250ms", "NATS_URL": "nats://10.0.0.1:4222",
			},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:9000" || c.APIURL != "https://eu.api.novu.co" || c.Timeout != 20*time.Second ||
					c.AckWait != 60*time.Second || c.RetryBase != 2*time.Second || c.RetryMax != time.Minute || c.MaxDeliver != 7 ||
					c.BreakerFailures != 3 || c.BreakerOpen != 10*time.Second || c.RateLimit != 240 || c.Bulk ||
					c.BulkMin != 20 || c.Concurrency != 32 || c.FetchWait != 250*time.Millisecond || c.NATS.URL != "nats://10.0.0.1:4222" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name:  "ack wait follows the timeout",
			given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_TIMEOUT": "15s"},
			check: func(t *testing.T, c Config) {
				if c.AckWait != 45*time.Second {
					t.Errorf("AckWait = %v, want 3×15s", c.AckWait)
				}
			},
		},
		{
			name:  "key from file",
			given: map[string]string{"NOVU_SECRET_KEY_FILE": keyFile},
			check: func(t *testing.T, c Config) {
				if c.SecretKey != "sk_from_file" {
					t.Errorf("SecretKey = %q", string(c.SecretKey))
				}
			},
		},
		{
			name:  "dry run needs no key",
			given: map[string]string{"NOVU_DRY_RUN": "true"},
			check: func(t *testing.T, c Config) {
				if !c.DryRun || c.SecretKey != "" {
					t.Errorf("DryRun = %v, key set = %v", c.DryRun, c.SecretKey != "")
				}
			},
		},
		{
			name:  "unlimited rate",
			given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_RATE_LIMIT": "0"},
			check: func(t *testing.T, c Config) {
				if c.RateLimit != 0 {
					t.Errorf("RateLimit = %v, want 0", c.RateLimit)
				}
			},
		},
		{name: "missing key", given: map[string]string{}, wantErr: []string{"NOVU_SECRET_KEY: required", "NOVU_DRY_RUN=true"}},
		{name: "key and key file", given: map[string]string{"NOVU_SECRET_KEY": "a", "NOVU_SECRET_KEY_FILE": keyFile}, wantErr: []string{"not both"}},
		{name: "old ops address name", given: map[string]string{"NOVU_SECRET_KEY": "k", "SINK_ADDR": ":9192"}, wantErr: []string{"SINK_ADDR: replaced by SINK_OPS_ADDR"}},
		{name: "unreadable key file", given: map[string]string{"NOVU_SECRET_KEY_FILE": "/nonexistent/key"}, wantErr: []string{"NOVU_SECRET_KEY_FILE"}},
		{name: "bad URL", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_API_URL": "api.novu.co"}, wantErr: []string{"NOVU_API_URL", "https://eu.api.novu.co"}},
		{name: "http to a remote host", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_API_URL": "http://api.novu.co"}, wantErr: []string{"NOVU_API_URL: want https", "api.novu.co"}},
		{name: "http to a public IP", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_API_URL": "http://203.0.113.9:8080"}, wantErr: []string{"NOVU_API_URL: want https"}},
		{name: "URL with credentials", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_API_URL": "https://u:p@api.novu.co"}, wantErr: []string{"NOVU_API_URL: must not hold credentials"}},
		{name: "ack wait not above timeout", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_TIMEOUT": "30s", "NOVU_ACK_WAIT": "30s"}, wantErr: []string{"NOVU_ACK_WAIT"}},
		{name: "retry max below base", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_RETRY_BASE": "10s", "NOVU_RETRY_MAX": "1s"}, wantErr: []string{"NOVU_RETRY_MAX"}},
		{name: "no shutdown budget", given: map[string]string{"NOVU_SECRET_KEY": "k", "SHUTDOWN_TIMEOUT": "0s"}, wantErr: []string{"SHUTDOWN_TIMEOUT"}},
		{name: "bulk min above 100", given: map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_BULK_MIN": "101"}, wantErr: []string{"NOVU_BULK_MIN"}},
		{
			name:    "several problems at once",
			given:   map[string]string{"NOVU_SECRET_KEY": "k", "NOVU_TIMEOUT": "soon", "NOVU_CONCURRENCY": "0", "NOVU_RATE_LIMIT": "-1", "NOVU_BULK": "maybe"},
			wantErr: []string{"NOVU_TIMEOUT", "NOVU_CONCURRENCY", "NOVU_RATE_LIMIT", "NOVU_BULK"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(env(tt.given))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("LoadConfig = nil error, want %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if v := tt.given["NOVU_SECRET_KEY"]; v != "" && v != "k" && strings.Contains(err.Error(), v) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := Config{SecretKey: "sk_live_very_secret"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c.SecretKey), c.SecretKey.LogValue().String()} {
		if strings.Contains(s, "very_secret") {
			t.Errorf("formatted config shows the key: %s", s)
		}
	}
}

// TestValidate: a Config built in code is checked by the same rules as
// LoadConfig, with the same one-line problems, each naming the variable.
func TestValidate(t *testing.T) {
	base, err := LoadConfig(env(map[string]string{"NOVU_SECRET_KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "loaded defaults", change: func(*Config) {}},
		{name: "dry run without a key", change: func(c *Config) { c.DryRun, c.SecretKey = true, "" }},
		{name: "no key", change: func(c *Config) { c.SecretKey = "" }, wantErr: "NOVU_SECRET_KEY: required"},
		{name: "address without port", change: func(c *Config) { c.Addr = "8082" }, wantErr: `SINK_OPS_ADDR: want host:port such as :8082, got "8082"`},
		{name: "no timeout", change: func(c *Config) { c.Timeout = 0 }, wantErr: "NOVU_TIMEOUT: want a positive duration"},
		{name: "bulk min of one", change: func(c *Config) { c.BulkMin = 1 }, wantErr: "NOVU_BULK_MIN: want 2 to 100"},
		{name: "no concurrency", change: func(c *Config) { c.Concurrency = 0 }, wantErr: "NOVU_CONCURRENCY: want at least 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			err := c.Validate()
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

// TestPlainHTTPOnlyToLoopback: the fake Novu of tests and devstack listens
// on loopback over http; any other host must be https.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:4000", "http://localhost:4000", "http://[::1]:4000"} {
		c := Config{APIURL: u, DryRun: true}
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "NOVU_API_URL") {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}
