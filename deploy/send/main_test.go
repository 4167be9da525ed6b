package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events/samples"
	svix "github.com/svix/svix-webhooks/go"
)

// Made-up endpoint secrets: whsec_ + base64.
const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_C2FtcGxlLXNlY3JldC1mb3ItdGVzdHMtb25seQ=="
)

var svixIDFormat = regexp.MustCompile(`^msg_[0-9A-Za-z]{27}$`)

// delivery is one request the test receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server that verifies Svix signatures with the Svix
// library, as the real receiver does, and answers status with answer when
// they hold, 401 otherwise.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries []delivery
}

func newReceiver(t *testing.T, secret string, status int, answer string) *receiver {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.deliveries = append(r.deliveries, delivery{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		if req.Method != http.MethodPost || req.URL.Path != "/webhooks/clerk" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if err := wh.Verify(body, req.Header); err != nil {
			http.Error(w, "invalid signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) url() string { return r.URL + "/webhooks/clerk" }

func (r *receiver) got() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

// env returns a getenv over kv pairs.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// runSend runs the command and returns its exit code, stdout and stderr.
func runSend(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, getenv)
	return code, stdout.String(), stderr.String()
}

// isolate moves the test into an empty directory marked as a repository root,
// so no real .devstack/webhook-secret is found.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.work"), []byte("go 1.26\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return dir
}

func TestSendSample(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusAccepted, `{"status":"stored","stream":"CLERK","seq":1}`+"\n")
	code, stdout, stderr := runSend(t, env(urlEnv, r.url(), secretEnv, secretA), "user.created")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got := r.got()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	want, _ := samples.Get("user.created")
	if !bytes.Equal(got[0].body, want.Body) {
		t.Error("body differs from the sample")
	}
	id := got[0].header.Get("svix-id")
	if !svixIDFormat.MatchString(id) {
		t.Errorf("svix-id %q", id)
	}
	if ct := got[0].header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{"user.created", id, "202 Accepted", `{"status":"stored","stream":"CLERK","seq":1}`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout %q lacks %q", stdout, want)
		}
	}
	if strings.Contains(stdout+stderr, secretA) {
		t.Error("the secret was printed")
	}
}

func TestSendEverySample(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusOK, "ok")
	for _, name := range samples.Names() {
		if code, _, stderr := runSend(t, env(secretEnv, secretA), "-url", r.url(), name); code != 0 {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
	}
	if n := len(r.got()); n != len(samples.Names()) {
		t.Errorf("%d deliveries, want %d", n, len(samples.Names()))
	}
}

func TestFlagsAfterTheEvent(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusOK, "ok")
	code, stdout, stderr := runSend(t, env(), "email.created/magic_link_sign_in", "-v", "-url", r.url(), "-secret", secretA)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	s, _ := samples.Get("email.created/magic_link_sign_in")
	if !strings.Contains(stdout, string(s.Body)) {
		t.Error("-v did not print the body sent")
	}
	if got := r.got(); len(got) != 1 || !bytes.Equal(got[0].body, s.Body) {
		t.Error("the variant's body was not sent")
	}
}

func TestWebhookHeaders(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusOK, "ok")
	code, _, stderr := runSend(t, env(urlEnv, r.url(), secretEnv, secretA), "-webhook-headers", "session.created")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	h := r.got()[0].header
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if h.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	for _, k := range []string{"svix-id", "svix-timestamp", "svix-signature"} {
		if h.Get(k) != "" {
			t.Errorf("%s header sent with -webhook-headers", k)
		}
	}
}

func TestRepeatedID(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusOK, "ok")
	const id = "msg_2zWkQ7bVbKc1L3mN5pR8sT0uVwX"
	code, stdout, stderr := runSend(t, env(urlEnv, r.url(), secretEnv, secretA), "-id", id, "-n", "2", "user.created")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got := r.got()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	for _, d := range got {
		if d.header.Get("svix-id") != id {
			t.Errorf("svix-id %q, want %q", d.header.Get("svix-id"), id)
		}
	}
	if strings.Count(stdout, id) != 2 || !strings.Contains(stdout, "2 sent, 2 answered 2xx") {
		t.Errorf("stdout %q", stdout)
	}
}

func TestCopiesGetFreshIDs(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusOK, "ok")
	if code, _, stderr := runSend(t, env(urlEnv, r.url(), secretEnv, secretA), "-n", "3", "role.created"); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	seen := map[string]bool{}
	for _, d := range r.got() {
		seen[d.header.Get("svix-id")] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct svix-ids over 3 copies", len(seen))
	}
}

func TestSendFile(t *testing.T) {
	dir := isolate(t)
	r := newReceiver(t, secretA, http.StatusBadRequest, "invalid event: body is not valid JSON\n")
	for _, tt := range []struct {
		name, content string
		wantCode      int
	}{
		{name: "mine.json", content: `{"data":{"id":"agt_1"},"object":"event","type":"agent.updated"}`, wantCode: 1},
		{name: "broken.json", content: `{"type":`, wantCode: 1},
	} {
		p := filepath.Join(dir, tt.name)
		if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, _ := runSend(t, env(urlEnv, r.url(), secretEnv, secretA), "-file", p)
		if code != tt.wantCode {
			t.Errorf("%s: exit %d, want %d", tt.name, code, tt.wantCode)
		}
		got := r.got()
		if last := got[len(got)-1]; string(last.body) != tt.content {
			t.Errorf("%s: sent %q, want the file's bytes", tt.name, last.body)
		}
		if !strings.Contains(stdout, "400 Bad Request  invalid event: body is not valid JSON") {
			t.Errorf("stdout %q lacks the answer line", stdout)
		}
	}
}

func TestNon2xxAndWrongSecret(t *testing.T) {
	isolate(t)
	tests := []struct {
		name       string
		status     int
		recvSecret string
		wantOut    string
	}{
		{name: "503", status: http.StatusServiceUnavailable, recvSecret: secretA, wantOut: "503 Service Unavailable"},
		{name: "wrong secret", status: http.StatusOK, recvSecret: secretB, wantOut: "401 Unauthorized  invalid signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, tt.recvSecret, tt.status, "try later")
			code, stdout, stderr := runSend(t, env(urlEnv, r.url(), secretEnv, secretA), "user.created")
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(stdout, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", stdout, tt.wantOut)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "send: ") {
				t.Errorf("stderr %q is not one line", stderr)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	isolate(t)
	r := newReceiver(t, secretA, http.StatusOK, "ok")
	url := r.url()
	r.Close()
	code, _, stderr := runSend(t, env(urlEnv, url, secretEnv, secretA), "user.created")
	if code != 1 || !strings.Contains(stderr, "is the receiver running") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	isolate(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no event", args: nil, want: "which event"},
		{name: "unknown event", args: []string{"user.exploded"}, want: "send -list"},
		{name: "unknown variant", args: []string{"email.created/nope"}, want: "send -list"},
		{name: "two events", args: []string{"user.created", "user.updated"}, want: "one event"},
		{name: "event and file", args: []string{"-file", "x.json", "user.created"}, want: "not both"},
		{name: "missing file", args: []string{"-file", "nope.json"}, want: "nope.json"},
		{name: "zero copies", args: []string{"-n", "0", "user.created"}, want: "-n"},
		{name: "unknown flag", args: []string{"-nope", "user.created"}, want: "-nope"},
		{name: "bad secret", args: []string{"-secret", "whsec_not*base64", "user.created"}, want: "signing secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runSend(t, env(secretEnv, secretA), tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
			if strings.Contains(stderr, "not*base64") {
				t.Error("stderr echoes the secret")
			}
		})
	}
}

func TestList(t *testing.T) {
	code, stdout, _ := runSend(t, env(), "-list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	names := samples.Names()
	if len(lines) != len(names) {
		t.Fatalf("%d lines, want %d", len(lines), len(names))
	}
	for i, name := range names {
		fields := strings.Fields(lines[i])
		if len(fields) < 2 || fields[0] != name {
			t.Errorf("line %q, want %s and its description", lines[i], name)
		}
	}
}

func TestSecretSources(t *testing.T) {
	root := isolate(t)
	sub := filepath.Join(root, "services", "receiver")
	if err := os.MkdirAll(filepath.Join(root, devstackDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, devstackDir, secretFileName), []byte(secretB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	rA := newReceiver(t, secretA, http.StatusOK, "ok")
	rB := newReceiver(t, secretB, http.StatusOK, "ok")
	tests := []struct {
		name   string
		getenv func(string) string
		args   []string
		url    string
	}{
		{name: "devstack file found from a subdirectory", getenv: env(), url: rB.url()},
		{name: "env beats the file", getenv: env(secretEnv, secretA), url: rA.url()},
		{name: "flag beats env", getenv: env(secretEnv, secretB), args: []string{"-secret", secretA}, url: rA.url()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-url", tt.url, "user.deleted"}, tt.args...)
			if code, stdout, stderr := runSend(t, tt.getenv, args...); code != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

func TestSecretFileSearch(t *testing.T) {
	outer := t.TempDir()
	repo := filepath.Join(outer, "repo")
	deep := filepath.Join(repo, "a", "b")
	custom := filepath.Join(outer, "custom")
	for _, d := range []string{filepath.Join(outer, devstackDir), filepath.Join(repo, ".git"), deep, custom} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte(secretA), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A secret above the repository root is not the repository's devstack's.
	write(filepath.Join(outer, devstackDir, secretFileName))
	write(filepath.Join(custom, secretFileName))
	if p, ok := findSecretFile(deep, ""); ok {
		t.Errorf("found %s beyond the repository root", p)
	}
	if p, ok := findSecretFile(deep, custom); !ok || p != filepath.Join(custom, secretFileName) {
		t.Errorf("absolute DEVSTACK_DIR: %q, %v", p, ok)
	}
	if err := os.MkdirAll(filepath.Join(repo, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(repo, "data", secretFileName))
	if p, ok := findSecretFile(deep, "data"); !ok || p != filepath.Join(repo, "data", secretFileName) {
		t.Errorf("relative DEVSTACK_DIR: %q, %v", p, ok)
	}
	if err := os.MkdirAll(filepath.Join(repo, devstackDir, secretFileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if p, ok := findSecretFile(deep, ""); ok {
		t.Errorf("took the directory %s for a file", p)
	}
}

func TestNoSecret(t *testing.T) {
	isolate(t)
	code, _, stderr := runSend(t, env(), "user.created")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{"-secret", secretEnv, "devstack"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q is not one line", stderr)
	}
}

func TestFirstLine(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct{ in, want string }{
		{in: "", want: "(empty answer)"},
		{in: "\n\n  {\"ok\":true}\nsecond", want: `{"ok":true}`},
		{in: long, want: strings.Repeat("é", maxAnswerBytes/2) + "…"},
	}
	for _, tt := range tests {
		if got := firstLine(strings.NewReader(tt.in)); got != tt.want {
			t.Errorf("firstLine(%.20q) = %.40q, want %.40q", tt.in, got, tt.want)
		}
	}
}
