package app_test

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/app"
)

var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-app-test-secret-a-00001"))
	secretB = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-app-test-secret-b-00002"))
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secretA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defaults := func(c *app.Config) {}
	tests := []struct {
		name    string
		env     map[string]string
		check   func(c *app.Config) // edits the expected config, from the defaults
		wantErr []string            // substrings of the error, each naming what to fix
	}{
		{
			name:  "defaults",
			env:   map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA},
			check: defaults,
		},
		{
			name: "everything set",
			env: map[string]string{
				"CLERK_WEBHOOK_SIGNING_SECRET": secretA + ", " + secretB,
				"RECEIVER_ADDR":                "127.0.0.1:9000",
				"RECEIVER_PATH":                "/hooks/clerk",
				"RECEIVER_MAX_BODY_BYTES":      "65536",
				"RECEIVER_PUBLISH_TIMEOUT":     "2500ms",
				"RECEIVER_MAX_PENDING":         "64",
				"SHUTDOWN_TIMEOUT":             "3s",
				"RECEIVER_OPS_ADDR":            "127.0.0.1:9001",
				"RECEIVER_PPROF":               "true",
				"RECEIVER_MAX_IN_FLIGHT":       "32",
				"NATS_URL":                     "nats://127.0.0.1:4333",
				"NATS_PROVISION":               "false",
				"STREAM_DUPLICATE_WINDOW":      "48h",
				"LOG_LEVEL":                    "debug",
				"LOG_FORMAT":                   "text",
			},
			check: func(c *app.Config) {
				c.Secrets = app.Secrets{secretA, secretB}
				c.Addr, c.Path = "127.0.0.1:9000", "/hooks/clerk"
				c.MaxBodyBytes, c.PublishTimeout, c.MaxPending, c.ShutdownTimeout = 65536, 2500*time.Millisecond, 64, 3*time.Second
				c.OpsAddr, c.Pprof, c.MaxInFlight = "127.0.0.1:9001", true, 32
				c.NATS.URL, c.NATS.Provision, c.NATS.DuplicateWindow = "nats://127.0.0.1:4333", false, 48*time.Hour
				c.Log.Level, c.Log.Format = slog.LevelDebug, "text"
			},
		},
		{
			name:  "secret from a file",
			env:   map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET_FILE": secretFile},
			check: defaults,
		},
		{
			name:  "rotation separated by spaces",
			env:   map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA + " " + secretB},
			check: func(c *app.Config) { c.Secrets = app.Secrets{secretA, secretB} },
		},
		{name: "secret missing", env: map[string]string{}, wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET: required"}},
		{name: "1-byte key", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": "whsec_AA=="}, wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET", "key is 1 bytes, want at least 16"}},
		{name: "ops on the webhook port", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_ADDR": ":8080", "RECEIVER_OPS_ADDR": ":8080"}, wantErr: []string{"RECEIVER_OPS_ADDR: must differ from RECEIVER_ADDR"}},
		{name: "old pprof setting", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_DEBUG_ADDR": "127.0.0.1:6060"}, wantErr: []string{"RECEIVER_DEBUG_ADDR: replaced by RECEIVER_PPROF=true"}},
		{name: "secret blank", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": " , "}, wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET", "no secret"}},
		{name: "secret not base64", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": "whsec_hunter2!!"}, wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET", "secret 1 of 1", "base64"}},
		{name: "second secret bad", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA + ",whsec_"}, wantErr: []string{"secret 2 of 2", "empty key"}},
		{
			name:    "secret and file both set",
			env:     map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "CLERK_WEBHOOK_SIGNING_SECRET_FILE": secretFile},
			wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET: set either"},
		},
		{name: "secret file missing", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET_FILE": filepath.Join(dir, "nope")}, wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET_FILE", "cannot read"}},
		{name: "secret file empty", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET_FILE": emptyFile}, wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET_FILE", "is empty"}},
		{name: "path without slash", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_PATH": "webhooks"}, wantErr: []string{"RECEIVER_PATH"}},
		{name: "path with a wildcard", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_PATH": "/hooks/{id}"}, wantErr: []string{"RECEIVER_PATH"}},
		{name: "body limit not a number", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_MAX_BODY_BYTES": "1MB"}, wantErr: []string{"RECEIVER_MAX_BODY_BYTES"}},
		{name: "body limit zero", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_MAX_BODY_BYTES": "0"}, wantErr: []string{"RECEIVER_MAX_BODY_BYTES"}},
		{name: "publish timeout not a duration", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_PUBLISH_TIMEOUT": "5"}, wantErr: []string{"RECEIVER_PUBLISH_TIMEOUT"}},
		{name: "publish timeout past Svix's deadline", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_PUBLISH_TIMEOUT": "15s"}, wantErr: []string{"RECEIVER_PUBLISH_TIMEOUT", "15s"}},
		{name: "max pending zero", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "RECEIVER_MAX_PENDING": "0"}, wantErr: []string{"RECEIVER_MAX_PENDING"}},
		{name: "bad NATS URL", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "NATS_URL": "localhost"}, wantErr: []string{"NATS_URL"}},
		{name: "bad log level", env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secretA, "LOG_LEVEL": "loud"}, wantErr: []string{"LOG_LEVEL"}},
		{
			name:    "every problem at once",
			env:     map[string]string{"RECEIVER_MAX_PENDING": "-1", "NATS_PROVISION": "maybe"},
			wantErr: []string{"CLERK_WEBHOOK_SIGNING_SECRET", "RECEIVER_MAX_PENDING", "NATS_PROVISION"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := app.LoadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("LoadConfig: no error, want one mentioning %q", tt.wantErr)
				}
				line := service.OneLine(err)
				for _, w := range tt.wantErr {
					if !strings.Contains(line, w) {
						t.Errorf("error %q does not mention %q", line, w)
					}
				}
				for _, v := range tt.env {
					if strings.HasPrefix(v, "whsec_") && len(v) > len("whsec_") && strings.Contains(line, strings.TrimPrefix(v, "whsec_")) {
						t.Errorf("error %q echoes a secret", line)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			want := app.Config{
				Secrets:         app.Secrets{secretA},
				Addr:            ":8080",
				Path:            "/webhooks/clerk",
				MaxBodyBytes:    1<<20 - 16<<10,
				PublishTimeout:  5 * time.Second,
				MaxPending:      4096,
				MaxInFlight:     128,
				OpsAddr:         ":9090",
				ShutdownTimeout: 20 * time.Second,
				NATS: service.NATSConfig{
					URL: service.DefaultNATSURL, Provision: true, Replicas: 1,
					MaxAge: 7 * 24 * time.Hour, DuplicateWindow: 36 * time.Hour, DLQMaxAge: 30 * 24 * time.Hour,
				},
				Log: service.LogConfig{Format: "json"},
			}
			tt.check(&want)
			if fmt.Sprintf("%#v|%q", got, []string(got.Secrets)) != fmt.Sprintf("%#v|%q", want, []string(want.Secrets)) {
				t.Errorf("LoadConfig =\n%#v %q\nwant\n%#v %q", got, []string(got.Secrets), want, []string(want.Secrets))
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate of a loaded config: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     app.Config
		wantErr string
	}{
		{name: "zero fields take defaults", cfg: app.Config{Secrets: app.Secrets{secretA}}},
		{name: "no secret", cfg: app.Config{}, wantErr: "CLERK_WEBHOOK_SIGNING_SECRET: required"},
		{name: "bad secret", cfg: app.Config{Secrets: app.Secrets{"whsec_*"}}, wantErr: "base64"},
		{name: "bad path", cfg: app.Config{Secrets: app.Secrets{secretA}, Path: "metrics"}, wantErr: "RECEIVER_PATH"},
		{name: "negative body limit", cfg: app.Config{Secrets: app.Secrets{secretA}, MaxBodyBytes: -1}, wantErr: "RECEIVER_MAX_BODY_BYTES"},
		{name: "long publish timeout", cfg: app.Config{Secrets: app.Secrets{secretA}, PublishTimeout: time.Minute}, wantErr: "RECEIVER_PUBLISH_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c := app.Config{Secrets: app.Secrets{secretA, secretB}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, c)
		if strings.Contains(out, strings.TrimPrefix(secretA, "whsec_")) || strings.Contains(out, strings.TrimPrefix(secretB, "whsec_")) {
			t.Errorf("Sprintf(%q, cfg) shows a secret: %s", format, out)
		}
	}
}
