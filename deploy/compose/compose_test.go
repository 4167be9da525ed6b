package compose

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	novusink "github.com/clerknovu/pipeline/services/novu-sink/app"
	receiver "github.com/clerknovu/pipeline/services/receiver/app"
	router "github.com/clerknovu/pipeline/services/router/app"
)

// file is the part of the Compose specification compose.yaml uses; decoding
// is strict, so a misspelt key fails.
type file struct {
	Name     string             `yaml:"name"`
	XImage   yaml.Node          `yaml:"x-image"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart     string   `yaml:"restart"`
	ReadOnly    bool     `yaml:"read_only"`
	SecurityOpt []string `yaml:"security_opt"`
	CapDrop     []string `yaml:"cap_drop"`
}

func load(t *testing.T) file {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return f
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}`)

// interpolate resolves ${VAR}, ${VAR:-default} and ${VAR:?error} as Compose
// does, from shell.
func interpolate(t *testing.T, s string, shell map[string]string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		if v := shell[p[1]]; v != "" {
			return v
		}
		if p[2] == ":?" {
			t.Fatalf("%s is required: %s", p[1], p[3])
		}
		return p[3]
	})
}

func envOf(t *testing.T, s service, shell map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range s.Environment {
		out[k] = interpolate(t, v, shell)
	}
	return out
}

// readVars returns every environment variable name the Go files (tests
// excluded) in dirs mention, with its _FILE twin.
func readVars(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	name := regexp.MustCompile(`"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"`)
	vars := map[string]bool{}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range name.FindAllSubmatch(b, -1) {
				vars[string(m[1])], vars[string(m[1])+"_FILE"] = true, true
			}
		}
	}
	return vars
}

const root = "../.."

// The services compose runs, the directory of their configuration, how it is
// loaded, and devstack's port for them.
var pipeline = []struct {
	name, dir, port string
	load            func(func(string) string) error
}{
	{"receiver", "services/receiver/app", stack.DefaultReceiverAddr, func(g func(string) string) error { _, err := receiver.LoadConfig(g); return err }},
	{"router", "services/router/app", stack.DefaultRouterAddr, func(g func(string) string) error { _, err := router.LoadConfig(g); return err }},
	{"novu-sink", "services/novu-sink/app", stack.DefaultSinkAddr, func(g func(string) string) error { _, err := novusink.LoadConfig(g); return err }},
}

func TestServicesReadWhatComposeSets(t *testing.T) {
	f := load(t)
	secret, err := stack.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	shell := map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secret}
	shared := filepath.Join(root, "pkg/runtime/service")
	for _, p := range pipeline {
		t.Run(p.name, func(t *testing.T) {
			s, ok := f.Services[p.name]
			if !ok {
				t.Fatalf("no service %s", p.name)
			}
			vars := readVars(t, filepath.Join(root, p.dir), shared)
			env := envOf(t, s, shell)
			for k := range env {
				if !vars[k] {
					t.Errorf("%s sets %s, which %s never reads", p.name, k, p.name)
				}
			}
			if err := p.load(func(k string) string { return env[k] }); err != nil {
				t.Errorf("%s refuses its compose environment: %v", p.name, err)
			}
			if want := "/usr/local/bin/" + p.name; !slices.Equal(s.Command, []string{want}) {
				t.Errorf("command %q, want %s", s.Command, want)
			}
			_, port, _ := strings.Cut(p.port, ":")
			if want := fmt.Sprintf("127.0.0.1:%s:%s", port, port); !slices.Contains(s.Ports, want) {
				t.Errorf("ports %q, want devstack's %s", s.Ports, want)
			}
			if d := s.DependsOn["provision"]; d.Condition != "service_completed_successfully" {
				t.Errorf("depends_on %+v, want provision to complete first", s.DependsOn)
			}
			if s.Build == nil || s.Build.Dockerfile != "deploy/docker/Dockerfile" {
				t.Errorf("build %+v, want deploy/docker/Dockerfile", s.Build)
			} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("build: %v", err)
			}
			if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
				t.Errorf("read_only %v, cap_drop %v: want a read-only root and no capabilities", s.ReadOnly, s.CapDrop)
			}
			if env["NATS_INBOX_PREFIX"] != "_INBOX_"+p.name || env["NATS_USER"] != p.name || env["NATS_PROVISION"] != "false" {
				t.Errorf("NATS env %v, want user and inbox of its own, no provisioning", env)
			}
		})
	}
}

// Novu is a dry-run until a key and NOVU_DRY_RUN=false are given.
func TestNovuDryRunByDefault(t *testing.T) {
	f := load(t)
	env := envOf(t, f.Services["novu-sink"], nil)
	cfg, err := novusink.LoadConfig(func(k string) string { return env[k] })
	if err != nil || !cfg.DryRun {
		t.Fatalf("default sink: dry-run %v, err %v; want a dry-run", cfg.DryRun, err)
	}
	env = envOf(t, f.Services["novu-sink"], map[string]string{"NOVU_SECRET_KEY": "key", "NOVU_DRY_RUN": "false"})
	cfg, err = novusink.LoadConfig(func(k string) string { return env[k] })
	if err != nil || cfg.DryRun || cfg.SecretKey != "key" {
		t.Fatalf("with a key: dry-run %v, err %v; want real calls", cfg.DryRun, err)
	}
}

// NATS runs deploy/nats/nats-server.conf with JetStream stored in a volume,
// each service's password is the one the server gives its user, and
// provisioning waits for the server's JetStream health.
func TestNATSAndProvisioning(t *testing.T) {
	f := load(t)
	n := f.Services["nats"]
	if !slices.Contains(n.Volumes, "../nats:/etc/nats:ro") || !slices.Equal(n.Command, []string{"-c", "/etc/nats/nats-server.conf"}) {
		t.Errorf("nats volumes %q, command %q: want deploy/nats's config", n.Volumes, n.Command)
	}
	if _, ok := f.Volumes["nats-data"]; !ok || !slices.Contains(n.Volumes, "nats-data:/data") {
		t.Errorf("nats volumes %q: want the named volume nats-data at /data", n.Volumes)
	}
	for k, v := range n.Environment {
		t.Setenv(k, interpolate(t, v, nil))
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy/nats/nats-server.conf"))
	if err != nil {
		t.Fatalf("nats-server.conf with compose's environment: %v", err)
	}
	if !opts.JetStream || !strings.HasPrefix(opts.StoreDir, "/data/") {
		t.Errorf("JetStream %v in %q, want it on, stored in the volume", opts.JetStream, opts.StoreDir)
	}
	users := map[string]string{}
	for _, u := range opts.Users {
		users[u.Username] = u.Password
	}
	for _, svc := range []string{"provision", "receiver", "router", "novu-sink"} {
		env := envOf(t, f.Services[svc], map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": "whsec_x"})
		if pw, ok := users[env["NATS_USER"]]; !ok || pw != env["NATS_PASSWORD"] {
			t.Errorf("%s connects as %q with a password the server does not give that user", svc, env["NATS_USER"])
		}
		if env["NATS_URL"] != "nats://nats:4222" {
			t.Errorf("%s: NATS_URL %q", svc, env["NATS_URL"])
		}
	}
	p := f.Services["provision"]
	if p.DependsOn["nats"].Condition != "service_healthy" || p.Restart != "no" ||
		!slices.Equal(p.Command, []string{"/usr/local/bin/clerknovu", "provision"}) {
		t.Errorf("provision %+v, want clerknovu provision once NATS is healthy", p)
	}
	if n.Healthcheck == nil || !strings.Contains(strings.Join(n.Healthcheck.Test, " "), "/healthz?js-enabled-only=true") {
		t.Errorf("nats healthcheck %+v, want JetStream's health", n.Healthcheck)
	}
}
