package service

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
)

// envOf returns a getenv over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to a new file in a test directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkOneLine fails unless err is a single line starting with "name:".
func checkOneLine(t *testing.T, err error, name string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one about %s", name)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is more than one line", msg)
	}
	if !strings.HasPrefix(msg, name+":") {
		t.Errorf("error %q does not start with %s:", msg, name)
	}
}

func TestSecret(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string // the variable the error names; "" for none
	}{
		{name: "unset", env: map[string]string{}, want: ""},
		{name: "value", env: map[string]string{"SECRET": secret}, want: secret},
		{name: "file", env: map[string]string{"SECRET_FILE": "FILE:" + secret + "\n"}, want: secret},
		{name: "file with CRLF", env: map[string]string{"SECRET_FILE": "FILE:" + secret + "\r\n"}, want: secret},
		{name: "file keeps inner spaces", env: map[string]string{"SECRET_FILE": "FILE: a b \n"}, want: " a b "},
		{name: "both set", env: map[string]string{"SECRET": secret, "SECRET_FILE": "FILE:" + secret}, wantErr: "SECRET"},
		{name: "missing file", env: map[string]string{"SECRET_FILE": "/nonexistent/secret"}, wantErr: "SECRET_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				if content, ok := strings.CutPrefix(v, "FILE:"); ok {
					v = writeFile(t, "secret", content)
				}
				env[k] = v
			}
			e := NewEnv(envOf(env))
			got := e.Secret("SECRET")
			err := e.Err()
			if tt.wantErr != "" {
				checkOneLine(t, err, tt.wantErr)
				if strings.Contains(err.Error(), "MfKQ9r8G") {
					t.Errorf("error %q holds the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if got != tt.want {
				t.Errorf("Secret = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTypedValues(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		read    func(*Env) any
		want    any
		wantErr bool
	}{
		{name: "bool unset", value: "", read: func(e *Env) any { return e.Bool("V", true) }, want: true},
		{name: "bool yes", value: "yes", read: func(e *Env) any { return e.Bool("V", false) }, want: true},
		{name: "bool ON", value: " ON ", read: func(e *Env) any { return e.Bool("V", false) }, want: true},
		{name: "bool 0", value: "0", read: func(e *Env) any { return e.Bool("V", true) }, want: false},
		{name: "bool off", value: "off", read: func(e *Env) any { return e.Bool("V", true) }, want: false},
		{name: "bool bad", value: "maybe", read: func(e *Env) any { return e.Bool("V", true) }, want: true, wantErr: true},
		{name: "int", value: "42", read: func(e *Env) any { return e.Int("V", 1, 0) }, want: 42},
		{name: "int unset", value: "", read: func(e *Env) any { return e.Int("V", 7, 0) }, want: 7},
		{name: "int not a number", value: "4x", read: func(e *Env) any { return e.Int("V", 7, 0) }, want: 7, wantErr: true},
		{name: "int float", value: "1.5", read: func(e *Env) any { return e.Int("V", 7, 0) }, want: 7, wantErr: true},
		{name: "int below minimum", value: "0", read: func(e *Env) any { return e.Int("V", 7, 1) }, want: 7, wantErr: true},
		{name: "float", value: "2.5", read: func(e *Env) any { return e.Float("V", 1, 0) }, want: 2.5},
		{name: "float bad", value: "fast", read: func(e *Env) any { return e.Float("V", 1, 0) }, want: 1.0, wantErr: true},
		{name: "float below minimum", value: "-1", read: func(e *Env) any { return e.Float("V", 1, 0) }, want: 1.0, wantErr: true},
		{name: "float NaN", value: "NaN", read: func(e *Env) any { return e.Float("V", 1, 0) }, want: 1.0, wantErr: true},
		{name: "float infinite", value: "+Inf", read: func(e *Env) any { return e.Float("V", 1, 0) }, want: 1.0, wantErr: true},
		{name: "duration", value: "1m30s", read: func(e *Env) any { return e.Duration("V", time.Second) }, want: 90 * time.Second},
		{name: "duration unset", value: "", read: func(e *Env) any { return e.Duration("V", time.Second) }, want: time.Second},
		{name: "duration without unit", value: "5", read: func(e *Env) any { return e.Duration("V", time.Second) }, want: time.Second, wantErr: true},
		{name: "duration in days", value: "7d", read: func(e *Env) any { return e.Duration("V", time.Second) }, want: time.Second, wantErr: true},
		{name: "duration zero", value: "0s", read: func(e *Env) any { return e.Duration("V", time.Second) }, want: time.Second, wantErr: true},
		{name: "duration negative", value: "-1s", read: func(e *Env) any { return e.Duration("V", time.Second) }, want: time.Second, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(envOf(map[string]string{"V": tt.value}))
			got := tt.read(e)
			if got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
			if tt.wantErr {
				checkOneLine(t, e.Err(), "V")
				if !strings.Contains(e.Err().Error(), strings.TrimSpace(tt.value)) {
					t.Errorf("error %q does not show the bad value", e.Err())
				}
			} else if err := e.Err(); err != nil {
				t.Errorf("error %v", err)
			}
		})
	}
}

func TestErrJoinsEveryProblem(t *testing.T) {
	e := NewEnv(envOf(map[string]string{"A": "x", "B": "y"}))
	e.Int("A", 0, 0)
	e.Bool("B", false)
	e.Required("C", "", "the Novu API key")
	err := e.Err()
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "A:") || !strings.HasPrefix(lines[1], "B:") || !strings.HasPrefix(lines[2], "C:") {
		t.Errorf("Err() = %q, want one line per variable", err)
	}
	if one := OneLine(err); strings.Contains(one, "\n") || strings.Count(one, "; ") != 2 {
		t.Errorf("OneLine = %q", one)
	}
}

func TestFile(t *testing.T) {
	p := writeFile(t, "ca.pem", "pem")
	e := NewEnv(envOf(map[string]string{"OK": p, "BAD": filepath.Join(t.TempDir(), "missing.pem")}))
	if got := e.File("OK"); got != p {
		t.Errorf("File(OK) = %q", got)
	}
	if got := e.File("UNSET"); got != "" {
		t.Errorf("File(UNSET) = %q", got)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("error %v", err)
	}
	e.File("BAD")
	checkOneLine(t, e.Err(), "BAD")
}

func TestNATS(t *testing.T) {
	creds := writeFile(t, "user.creds", "creds")
	cert := writeFile(t, "cert.pem", "cert")
	tests := []struct {
		name    string
		env     map[string]string
		check   func(*testing.T, NATSConfig)
		wantErr string // a variable the error names
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			check: func(t *testing.T, c NATSConfig) {
				if c.URL != DefaultNATSURL || !c.Provision || c.Replicas != 1 ||
					c.MaxAge != events.DefaultMaxAge || c.DuplicateWindow != events.DefaultDuplicateWindow || c.DLQMaxAge != events.DefaultDLQMaxAge {
					t.Errorf("defaults %+v", c)
				}
			},
		},
		{
			name:    "duplicate window longer than max age",
			env:     map[string]string{"STREAM_MAX_AGE": "24h"},
			wantErr: "STREAM_DUPLICATE_WINDOW",
		},
		{
			name: "stream settings",
			env:  map[string]string{"NATS_URL": "nats://a:4222, nats://b:4222", "NATS_PROVISION": "false", "STREAM_MAX_AGE": "48h", "STREAM_DUPLICATE_WINDOW": "2h", "STREAM_DLQ_MAX_AGE": "24h", "STREAM_REPLICAS": "3"},
			check: func(t *testing.T, c NATSConfig) {
				if c.Provision || c.Replicas != 3 || c.MaxAge != 48*time.Hour {
					t.Errorf("config %+v", c)
				}
				s := events.ClerkStream(c.StreamOptions()...)
				if s.MaxAge != 48*time.Hour || s.Duplicates != 2*time.Hour || s.Replicas != 3 {
					t.Errorf("stream options not applied: %+v", s)
				}
				if d := events.DLQStream(c.StreamOptions()...); d.MaxAge != 24*time.Hour {
					t.Errorf("DLQ max age %v", d.MaxAge)
				}
			},
		},
		{name: "user and password", env: map[string]string{"NATS_USER": "router", "NATS_PASSWORD": "pw"}},
		{name: "token", env: map[string]string{"NATS_TOKEN": "tok"}},
		{name: "creds", env: map[string]string{"NATS_CREDS": creds}},
		{name: "creds and token", env: map[string]string{"NATS_CREDS": creds, "NATS_TOKEN": "tok"}, wantErr: "NATS auth"},
		{name: "token and user", env: map[string]string{"NATS_TOKEN": "tok", "NATS_USER": "u", "NATS_PASSWORD": "p"}, wantErr: "NATS auth"},
		{name: "user without password", env: map[string]string{"NATS_USER": "router"}, wantErr: "NATS_USER"},
		{name: "password without user", env: map[string]string{"NATS_PASSWORD": "pw"}, wantErr: "NATS_USER"},
		{name: "password and password file", env: map[string]string{"NATS_PASSWORD": "pw", "NATS_PASSWORD_FILE": creds}, wantErr: "NATS_PASSWORD"},
		{name: "missing creds file", env: map[string]string{"NATS_CREDS": "/nonexistent/user.creds"}, wantErr: "NATS_CREDS"},
		{name: "cert without key", env: map[string]string{"NATS_TLS_CERT": cert}, wantErr: "NATS_TLS_CERT"},
		{name: "URL without scheme", env: map[string]string{"NATS_URL": "127.0.0.1:4222"}, wantErr: "NATS_URL"},
		{name: "too many replicas", env: map[string]string{"STREAM_REPLICAS": "7"}, wantErr: "STREAM_REPLICAS"},
		{name: "zero replicas", env: map[string]string{"STREAM_REPLICAS": "0"}, wantErr: "STREAM_REPLICAS"},
		{name: "max age in days", env: map[string]string{"STREAM_MAX_AGE": "7d"}, wantErr: "STREAM_MAX_AGE"},
		{name: "bad provision", env: map[string]string{"NATS_PROVISION": "sometimes"}, wantErr: "NATS_PROVISION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(envOf(tt.env))
			c := e.NATS()
			err := e.Err()
			if tt.wantErr != "" {
				checkOneLine(t, err, tt.wantErr)
				if strings.Contains(err.Error(), `"tok"`) || strings.Contains(err.Error(), `"pw"`) {
					t.Errorf("error %q holds a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestLog(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantLevel  slog.Level
		wantFormat string
		wantErr    string
	}{
		{name: "defaults", env: map[string]string{}, wantLevel: slog.LevelInfo, wantFormat: "json"},
		{name: "debug text", env: map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "TEXT"}, wantLevel: slog.LevelDebug, wantFormat: "text"},
		{name: "warn", env: map[string]string{"LOG_LEVEL": "WARN"}, wantLevel: slog.LevelWarn, wantFormat: "json"},
		{name: "bad level", env: map[string]string{"LOG_LEVEL": "verbose"}, wantErr: "LOG_LEVEL"},
		{name: "bad format", env: map[string]string{"LOG_FORMAT": "xml"}, wantErr: "LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(envOf(tt.env))
			c := e.Log()
			if tt.wantErr != "" {
				checkOneLine(t, e.Err(), tt.wantErr)
				return
			}
			if err := e.Err(); err != nil {
				t.Fatal(err)
			}
			if c.Level != tt.wantLevel || c.Format != tt.wantFormat {
				t.Errorf("Log() = %+v, want level %v format %q", c, tt.wantLevel, tt.wantFormat)
			}
		})
	}
}

func TestFailFormat(t *testing.T) {
	e := NewEnv(envOf(nil))
	e.Fail("NOVU_API_URL", "want an https URL, got %q", "ftp://x")
	if err := e.Err(); err == nil || err.Error() != `NOVU_API_URL: want an https URL, got "ftp://x"` {
		t.Errorf("Err() = %v", err)
	}
}

// NewEnv(nil) reads nothing, for a Config.Validate of a config built in code.
func TestNewEnvNil(t *testing.T) {
	e := NewEnv(nil)
	if got := e.String("X", "def"); got != "def" || e.Secret("Y") != "" || e.Err() != nil {
		t.Fatalf("NewEnv(nil): String = %q, Secret = %q, Err = %v; want the default, \"\", nil", got, e.Secret("Y"), e.Err())
	}
	e.Fail("ROUTER_ADDR", "want host:port such as :8081, got %q", "8081")
	if got := e.Err().Error(); got != `ROUTER_ADDR: want host:port such as :8081, got "8081"` {
		t.Errorf("Err = %q", got)
	}
}
