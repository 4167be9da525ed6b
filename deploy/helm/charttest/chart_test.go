package charttest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "../clerk-novu"

// rendered is a chart rendered to typed objects.
type rendered struct {
	deployments map[string]*appsv1.Deployment // by component
	pdbs        map[string]*policyv1.PodDisruptionBudget
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	ingresses   []*networkingv1.Ingress
	jobs        []*batchv1.Job
}

func load(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// render renders the chart as `helm template` would with the values
// (validated against values.schema.json), or returns the error.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch := load(t)
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.32.0", Major: "1", Minor: "32"}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "cn", Namespace: "pipeline", IsInstall: true, Revision: 1}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, top)
}

// decode splits every rendered file into documents and decodes each
// strictly into its kind's type: an unknown field fails the test.
func decode(t *testing.T, files map[string]string) rendered {
	t.Helper()
	r := rendered{deployments: map[string]*appsv1.Deployment{}, pdbs: map[string]*policyv1.PodDisruptionBudget{}}
	for name, content := range files {
		if filepath.Ext(name) != ".yaml" {
			continue
		}
		for i, doc := range strings.Split(content, "\n---") {
			if strings.Trim(doc, "-\n ") == "" || allComments(doc) {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s #%d: %v\n%s", name, i, err, doc)
			}
			var obj any
			switch meta.APIVersion + "/" + meta.Kind {
			case "apps/v1/Deployment":
				obj = &appsv1.Deployment{}
			case "policy/v1/PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "v1/Service":
				obj = &corev1.Service{}
			case "v1/ConfigMap":
				obj = &corev1.ConfigMap{}
			case "networking.k8s.io/v1/Ingress":
				obj = &networkingv1.Ingress{}
			case "batch/v1/Job":
				obj = &batchv1.Job{}
			default:
				t.Fatalf("%s #%d: unexpected %s %s", name, i, meta.APIVersion, meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s #%d (%s): strict decode: %v\n%s", name, i, meta.Kind, err, doc)
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				r.deployments[o.Labels["app.kubernetes.io/component"]] = o
			case *policyv1.PodDisruptionBudget:
				r.pdbs[o.Labels["app.kubernetes.io/component"]] = o
			case *corev1.Service:
				r.services = append(r.services, o)
			case *corev1.ConfigMap:
				r.configMaps = append(r.configMaps, o)
			case *networkingv1.Ingress:
				r.ingresses = append(r.ingresses, o)
			case *batchv1.Job:
				r.jobs = append(r.jobs, o)
			}
		}
	}
	return r
}

func allComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func mustRender(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	files, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return decode(t, files)
}

// opsPorts are the ops listeners the probes must reach, as decided for every service.
var opsPorts = map[string]struct {
	env  string
	port int32
}{
	"receiver":  {"RECEIVER_OPS_ADDR", 9090},
	"router":    {"ROUTER_OPS_ADDR", 8081},
	"novu-sink": {"SINK_OPS_ADDR", 8082},
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestDefaultValues(t *testing.T) {
	r := mustRender(t, nil)
	if len(r.deployments) != 3 {
		t.Fatalf("deployments %v, want receiver, router and novu-sink", keys(r.deployments))
	}
	for name, d := range r.deployments {
		t.Run(name, func(t *testing.T) {
			checkDeployment(t, name, d)
			if pdb := r.pdbs[name]; pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
				t.Errorf("PodDisruptionBudget = %+v, want minAvailable 1", pdb)
			} else if !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("PDB selector %v does not select the pods %v", pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
			}
		})
	}
	if len(r.services) != 1 || r.services[0].Spec.Ports[0].TargetPort.StrVal != "webhook" || len(r.services[0].Spec.Ports) != 1 {
		t.Errorf("services %+v, want the receiver's, on its webhook port only", r.services)
	}
	if len(r.ingresses) != 0 {
		t.Errorf("an Ingress by default")
	}
	if len(r.jobs) != 1 {
		t.Fatalf("jobs %d, want the provisioning Job", len(r.jobs))
	}
	job := r.jobs[0]
	if hook := job.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
		t.Errorf("provision hook %q, want pre-install,pre-upgrade", hook)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Command, " ") != "/usr/local/bin/clerknovu provision" {
		t.Errorf("provision command %q", c.Command)
	}
	if env := envOf(c); env["NATS_USER"] != "admin" || env["NATS_PASSWORD_FILE"] == "" || env["STREAM_REPLICAS"] != "3" {
		t.Errorf("provision env %v, want the admin user, its password file and 3 replicas", env)
	}
	checkSecurity(t, "provision", job.Spec.Template.Spec, c)
}

func checkDeployment(t *testing.T, name string, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	env := envOf(c)
	if got := strings.Join(c.Command, " "); got != "/usr/local/bin/"+name {
		t.Errorf("command %q", got)
	}
	ops := opsPorts[name]
	if env[ops.env] != fmt.Sprintf(":%d", ops.port) {
		t.Errorf("%s = %q, want :%d", ops.env, env[ops.env], ops.port)
	}
	var opsPort int32
	for _, p := range c.Ports {
		if p.Name == "ops" {
			opsPort = p.ContainerPort
		}
	}
	if opsPort != ops.port {
		t.Errorf("ops containerPort %d, want %d", opsPort, ops.port)
	}
	for what, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		want := "/healthz"
		if what == "readiness" {
			want = "/readyz"
		}
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.StrVal != "ops" {
			t.Errorf("%s probe %+v, want GET %s on the ops port", what, probe, want)
		}
	}
	checkSecurity(t, name, spec, c)

	// The grace period outlasts the shutdown budget (and the receiver's preStop sleep).
	budget := parseSeconds(t, env["SHUTDOWN_TIMEOUT"])
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		budget += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= budget {
		t.Errorf("terminationGracePeriodSeconds %v, want more than the shutdown budget %v", spec.TerminationGracePeriodSeconds, budget)
	}
	if name == "receiver" && (c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil) {
		t.Errorf("receiver without a preStop sleep: the Service keeps sending webhooks to a stopping pod")
	}

	// GOMEMLIMIT sits below the memory limit.
	limit := c.Resources.Limits.Memory().Value()
	gml := env["GOMEMLIMIT"]
	m := regexp.MustCompile(`^(\d+)MiB$`).FindStringSubmatch(gml)
	if limit == 0 || m == nil {
		t.Errorf("memory limit %d, GOMEMLIMIT %q: want both", limit, gml)
	} else if n, _ := strconv.ParseInt(m[1], 10, 64); n<<20 >= limit || n<<20 < limit*8/10 {
		t.Errorf("GOMEMLIMIT %s against a %d-byte limit, want 80-100%%", gml, limit)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("requests %v, want cpu and memory", c.Resources.Requests)
	}

	// Each service connects as its own user, limited to its own inbox, with
	// its password from a file, and does not provision.
	if env["NATS_USER"] != name || env["NATS_INBOX_PREFIX"] != "_INBOX_"+name || env["NATS_PASSWORD_FILE"] == "" || env["NATS_PASSWORD"] != "" {
		t.Errorf("NATS env %v, want user %s, inbox _INBOX_%s, a password file", env, name, name)
	}
	if env["NATS_PROVISION"] != "false" {
		t.Errorf("NATS_PROVISION = %q with the provisioning Job on", env["NATS_PROVISION"])
	}
	for k, v := range env {
		if strings.HasSuffix(k, "_FILE") && !mounted(c, v) {
			t.Errorf("%s = %s is on no volume mount", k, v)
		}
	}
}

// mounted reports whether path lies under one of c's volume mounts.
func mounted(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

func checkSecurity(t *testing.T, name string, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v, want non-root and the RuntimeDefault seccomp profile", name, psc)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: container securityContext %+v, want restricted", name, sc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted", name)
	}
}

func parseSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("SHUTDOWN_TIMEOUT %q: %v", s, err)
	}
	return d
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Every service can be deployed alone: the others' Deployments, PDBs,
// Service and ConfigMap disappear.
func TestOneServiceAlone(t *testing.T) {
	for _, only := range []string{"receiver", "router", "sink"} {
		t.Run(only, func(t *testing.T) {
			vals := map[string]any{"router": map[string]any{"routes": "rules: []\n"}}
			for _, svc := range []string{"receiver", "router", "sink"} {
				v, _ := vals[svc].(map[string]any)
				if v == nil {
					v = map[string]any{}
				}
				v["enabled"] = svc == only
				vals[svc] = v
			}
			r := mustRender(t, vals)
			name := map[string]string{"receiver": "receiver", "router": "router", "sink": "novu-sink"}[only]
			if len(r.deployments) != 1 || r.deployments[name] == nil {
				t.Fatalf("deployments %v, want only %s", keys(r.deployments), name)
			}
			checkDeployment(t, name, r.deployments[name])
			if len(r.pdbs) != 1 || r.pdbs[name] == nil {
				t.Errorf("PDBs %v, want only %s's", keys(r.pdbs), name)
			}
			if (len(r.services) == 1) != (only == "receiver") {
				t.Errorf("%d Services with only %s", len(r.services), only)
			}
			if (len(r.configMaps) == 1) != (only == "router") {
				t.Errorf("%d ConfigMaps with only %s", len(r.configMaps), only)
			}
		})
	}
}

// Scaling, routes, dry-run and the Ingress, each configured on its own.
func TestConfiguredServices(t *testing.T) {
	routes := "rules:\n  - on: user.created\n    workflow: welcome\n"
	r := mustRender(t, map[string]any{
		"receiver": map[string]any{"replicas": 4, "ingress": map[string]any{"enabled": true, "className": "nginx", "tlsSecret": "webhooks-tls"}},
		"router":   map[string]any{"replicas": 1, "routes": routes, "env": map[string]any{"ROUTER_CONCURRENCY": 32}},
		"sink":     map[string]any{"dryRun": true},
	})
	if n := *r.deployments["receiver"].Spec.Replicas; n != 4 {
		t.Errorf("receiver replicas %d, want 4", n)
	}
	if r.pdbs["router"] != nil {
		t.Errorf("a PDB on a single router would block every node drain")
	}
	router := r.deployments["router"].Spec.Template
	renv := envOf(router.Spec.Containers[0])
	if renv["ROUTES_FILE"] == "" || renv["ROUTER_CONCURRENCY"] != "32" || router.Annotations["checksum/routes"] == "" {
		t.Errorf("router env %v, annotations %v: want ROUTES_FILE, ROUTER_CONCURRENCY=32 and a routes checksum", renv, router.Annotations)
	}
	if len(r.configMaps) != 1 || r.configMaps[0].Data["routes.yaml"] != routes {
		t.Errorf("routes ConfigMap %+v, want the rules verbatim", r.configMaps)
	}
	senv := envOf(r.deployments["novu-sink"].Spec.Template.Spec.Containers[0])
	if senv["NOVU_DRY_RUN"] != "true" || senv["NOVU_SECRET_KEY_FILE"] != "" {
		t.Errorf("dry-run sink env %v, want NOVU_DRY_RUN=true and no key", senv)
	}
	if len(r.ingresses) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(r.ingresses))
	}
	ing := r.ingresses[0]
	p := ing.Spec.Rules[0].HTTP.Paths
	if len(p) != 1 || p[0].Path != "/webhooks/clerk" || *p[0].PathType != networkingv1.PathTypeExact || len(ing.Spec.TLS) != 1 {
		t.Errorf("Ingress %+v, want the webhook path only, exactly, with TLS", ing.Spec)
	}
}

// The provisioning Job gets the consumer settings set in router.env and
// sink.env, so it provisions the consumers the services check at start; a
// service's own setting wins over env, as in its Deployment.
func TestProvisionJobGetsResourceSettings(t *testing.T) {
	r := mustRender(t, map[string]any{
		"env":    map[string]any{"ROUTER_MAX_DELIVER": 3},
		"router": map[string]any{"env": map[string]any{"ROUTER_MAX_DELIVER": 15, "ROUTES_KV_BUCKET": "RULES", "ROUTER_CONCURRENCY": 32}},
		"sink":   map[string]any{"env": map[string]any{"NOVU_ACK_WAIT": "90s"}},
	})
	if len(r.jobs) != 1 {
		t.Fatalf("jobs %d, want the provisioning Job", len(r.jobs))
	}
	c := r.jobs[0].Spec.Template.Spec.Containers[0]
	env := envOf(c)
	for k, want := range map[string]string{"ROUTER_MAX_DELIVER": "15", "ROUTES_KV_BUCKET": "RULES", "NOVU_ACK_WAIT": "90s", "LOG_LEVEL": "info"} {
		if env[k] != want {
			t.Errorf("provision env %s = %q, want %q", k, env[k], want)
		}
	}
	if _, ok := env["ROUTER_CONCURRENCY"]; ok {
		t.Errorf("provision env has ROUTER_CONCURRENCY, which shapes no resource")
	}
	if len(env) != len(c.Env) {
		t.Errorf("provision env names a variable twice: %v", c.Env)
	}
	if renv := envOf(r.deployments["router"].Spec.Template.Spec.Containers[0]); renv["ROUTER_MAX_DELIVER"] != env["ROUTER_MAX_DELIVER"] {
		t.Errorf("router ROUTER_MAX_DELIVER %q, provision %q", renv["ROUTER_MAX_DELIVER"], env["ROUTER_MAX_DELIVER"])
	}
}

func TestGracePeriodBelowBudgetRefused(t *testing.T) {
	_, err := render(t, map[string]any{"terminationGracePeriodSeconds": 20})
	if err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSeconds") {
		t.Fatalf("err = %v, want a refusal naming terminationGracePeriodSeconds", err)
	}
}

// values.schema.json refuses values that cannot work, naming the key.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"replicas not a number", map[string]any{"router": map[string]any{"replicas": "two"}}, "replicas"},
		{"unknown key", map[string]any{"reciever": map[string]any{}}, "reciever"},
		{"memory not in Mi or Gi", map[string]any{"sink": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "1G"}}}}, "memory"},
		{"stream replicas", map[string]any{"nats": map[string]any{"url": "nats://n:4222", "streamReplicas": 7}}, "streamReplicas"},
		{"duration", map[string]any{"streams": map[string]any{"duplicateWindow": "36 hours"}}, "duplicateWindow"},
		{"NATS url", map[string]any{"nats": map[string]any{"url": "nats.local:4222"}}, "url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(t, tt.vals)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a schema error naming %s", err, tt.want)
			}
		})
	}
}

// The chart's files are all templates Helm renders, the schema included.
func TestChartFiles(t *testing.T) {
	ch := load(t)
	if ch.Schema == nil || !bytes.Contains(ch.Schema, []byte(`"additionalProperties": false`)) {
		t.Errorf("values.schema.json missing or open")
	}
	if ch.Metadata.KubeVersion == "" {
		t.Errorf("Chart.yaml names no kubeVersion (the receiver's preStop sleep needs 1.30)")
	}
}
