package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/cmd/clerknovu/ops"
	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const novuKey = "test-novu-key"

// exec runs the CLI in-process with env and returns its exit status and output.
func exec(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, &cli{
		getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(""),
		stdout: &out, stderr: &errOut, terminal: false, now: time.Now,
	})
	return code, out.String(), errOut.String()
}

// mustExec runs the CLI and fails the test unless it exits with want.
func mustExec(t *testing.T, env map[string]string, want int, args ...string) string {
	t.Helper()
	code, out, errOut := exec(t, env, args...)
	if code != want {
		t.Fatalf("clerknovu %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		res = append(res, v)
	}
	return res
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Rules: role.created routed to no one (the router dead-letters it), then
// fixed with a topic, then a second workflow added.
const (
	rulesBroken  = "rules:\n  - match: role.created\n    workflows: [role-changed]\n"
	rulesFixed   = "rules:\n  - match: role.created\n    workflows: [role-changed]\n    to: {topicKey: security}\n"
	rulesAddFlow = "rules:\n  - match: role.created\n    workflows: [role-changed, role-audit]\n    to: {topicKey: security}\n"
)

type pipeline struct {
	st   *stack.Stack
	fake *novufake.Server
	js   jetstream.JetStream
	env  map[string]string
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	fake := novufake.NewServer(novuKey)
	t.Cleanup(fake.Close)
	st, err := stack.Start(t.Context(), stack.Options{
		Dir: t.TempDir(),
		Env: map[string]string{
			"NOVU_API_URL": fake.URL, "NOVU_SECRET_KEY": novuKey, "NOVU_DRY_RUN": "false",
			"NOVU_RATE_LIMIT": "0", "NOVU_RETRY_BASE": "10ms", "NOVU_RETRY_MAX": "100ms", "NOVU_FETCH_WAIT": "100ms",
		},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	_, js := eventstest.Connect(t, st.NATSURL)
	return &pipeline{st: st, fake: fake, js: js, env: map[string]string{"NATS_URL": st.NATSURL, "ROUTES_KV_BUCKET": stack.DefaultRoutesBucket}}
}

// putRules stores rules with the CLI and waits until the router has them in force.
func (p *pipeline) putRules(t *testing.T, rules string) {
	t.Helper()
	out := mustExec(t, p.env, 0, "routes", "put", writeFile(t, "rules.yaml", rules), "--json")
	var put struct{ Revision uint64 }
	if err := json.Unmarshal([]byte(out), &put); err != nil || put.Revision == 0 {
		t.Fatalf("routes put printed %q", out)
	}
	want := "ROUTES/rules rev " + jsonUint(put.Revision)
	eventstest.Eventually(t, 10*time.Second, "the router to apply "+want, func() bool {
		resp, err := http.Get(p.st.RouterURL + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), want)
	})
}

func jsonUint(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// publish stores one role.created event in CLERK as the receiver would.
func (p *pipeline) publish(t *testing.T, svixID string) {
	t.Helper()
	s, ok := samples.Get("role.created")
	if !ok {
		t.Fatal("no role.created sample")
	}
	m := &nats.Msg{Subject: "clerk.role.created", Data: s.Body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, svixID)
	m.Header.Set(events.SvixIDHeader, svixID)
	m.Header.Set(events.EventTypeHeader, "role.created")
	m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if _, err := p.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

func (p *pipeline) deadLetters(t *testing.T, sel ops.Selector) []ops.DeadLetter {
	t.Helper()
	dls, err := ops.ListDeadLetters(t.Context(), p.js, sel)
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

// settled waits until the router and the sink have nothing pending.
func (p *pipeline) settled(t *testing.T) {
	t.Helper()
	eventstest.Eventually(t, 10*time.Second, "the consumers to settle", func() bool {
		for _, c := range []events.Consumer{events.RouterConsumer(), events.SinkConsumer()} {
			cons, err := p.js.Consumer(context.Background(), c.Stream, c.Config.Durable)
			if err != nil {
				return false
			}
			info, err := cons.Info(context.Background())
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}

// accepted counts the triggers of workflow Novu accepted, by transactionId.
func (p *pipeline) accepted(workflow string) map[string]int {
	m := map[string]int{}
	for _, tr := range p.fake.Accepted() {
		if tr.Name == workflow {
			m[tr.TransactionID]++
		}
	}
	return m
}

func TestRouterDeadLettersListedRedrivenAndReplayed(t *testing.T) {
	p := startPipeline(t)
	p.putRules(t, rulesBroken)
	svix := []string{samples.NewSvixID(), samples.NewSvixID(), samples.NewSvixID()}
	for _, id := range svix {
		p.publish(t, id)
	}
	eventstest.Eventually(t, 10*time.Second, "three router dead letters", func() bool {
		return len(p.deadLetters(t, ops.Selector{})) == 3
	})

	// ls: the fields, and each selector.
	type line struct {
		Seq        uint64
		Stage      string
		Subject    string
		Type       string
		Workflow   string
		Reason     string
		SvixID     string `json:"svix_id"`
		Time       time.Time
		Deliveries int
		Truncated  bool
	}
	all := jsonLines[line](t, mustExec(t, p.env, 0, "dlq", "ls", "--json"))
	if len(all) != 3 {
		t.Fatalf("dlq ls: %d lines, want 3", len(all))
	}
	// The router handles events concurrently: dead letters come in any order.
	for i, l := range all {
		if l.Seq == 0 || l.Stage != "router" || l.Subject != "dlq.router.role.created" || l.Type != "role.created" ||
			!strings.Contains(l.Reason, "no recipient") || !slices.Contains(svix, l.SvixID) || l.Time.IsZero() || l.Deliveries < 1 || l.Truncated {
			t.Errorf("dead letter %d = %+v", i, l)
		}
	}
	first := jsonUint(all[0].Seq)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--stage", "router"}, 3},
		{[]string{"--stage", "sink"}, 0},
		{[]string{"--type", "role.created"}, 3},
		{[]string{"--type", "user.created"}, 0},
		{[]string{"--workflow", "role-changed"}, 0},
		{[]string{"--reason", "NO RECIPIENT"}, 3},
		{[]string{"--reason", "novu 422"}, 0},
		{[]string{"--since", "1h"}, 3},
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, 0},
		{[]string{"--until", "1h"}, 0},
		{[]string{"--seq", first}, 1},
		{[]string{"--seq", first + "-"}, 3},
		{[]string{"--seq", "-" + first}, 1},
	} {
		got := jsonLines[line](t, mustExec(t, p.env, 0, append([]string{"dlq", "ls", "--json"}, tc.args...)...))
		if len(got) != tc.want {
			t.Errorf("dlq ls %v: %d dead letters, want %d", tc.args, len(got), tc.want)
		}
	}
	mustExec(t, p.env, 2, "dlq", "ls", "--since", "yesterday")

	// A plan without --yes and without a terminal changes nothing, exit 1.
	code, out, errOut := exec(t, p.env, "dlq", "redrive", "--stage", "router")
	if code != 1 || !strings.Contains(out, "plan: redrive 3 dead letter(s)") || !strings.Contains(errOut, "--yes") {
		t.Fatalf("redrive without --yes: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := len(p.deadLetters(t, ops.Selector{})); n != 3 {
		t.Fatalf("plan changed the DLQ: %d dead letters", n)
	}

	// Fix the rule, redrive: each event delivered once, the DLQ empty.
	p.putRules(t, rulesFixed)
	mustExec(t, p.env, 0, "dlq", "redrive", "--stage", "router", "--yes")
	eventstest.Eventually(t, 10*time.Second, "three role-changed triggers", func() bool { return len(p.accepted("role-changed")) == 3 })
	p.settled(t)
	for _, id := range svix {
		if n := p.accepted("role-changed")[events.TransactionID(id, "role-changed")]; n != 1 {
			t.Errorf("svix %s: role-changed triggered %d times, want 1", id, n)
		}
	}
	if n := len(p.deadLetters(t, ops.Selector{})); n != 0 {
		t.Fatalf("DLQ holds %d dead letters after the redrive", n)
	}
	redriven := eventstest.StreamMsgs(t, p.js, events.StreamClerk, "clerk.role.created")[3]
	if redriven.Header.Get(events.RedriveCountHeader) != "1" || redriven.Header.Get(events.RedriveOfHeader) != "DLQ/"+first ||
		redriven.Header.Get(events.SvixIDHeader) != all[0].SvixID || redriven.Header.Get("traceparent") == "" {
		t.Errorf("redriven event headers %v", redriven.Header)
	}

	// A second redrive changes nothing.
	calls := p.fake.Calls()
	out = mustExec(t, p.env, 0, "dlq", "redrive", "--yes")
	if !strings.Contains(out, "plan: redrive 0 dead letter(s)") {
		t.Errorf("second redrive printed %q", out)
	}
	p.settled(t)
	if got := p.fake.Calls(); got != calls {
		t.Errorf("second redrive: Novu calls %d → %d", calls, got)
	}

	// Replay after adding a workflow: only the new workflow fires.
	p.putRules(t, rulesAddFlow)
	mustExec(t, p.env, 1, "replay", "--since", "1h", "--type", "role.created")
	mustExec(t, p.env, 0, "replay", "--since", "1h", "--type", "role.created", "--yes")
	eventstest.Eventually(t, 10*time.Second, "three role-audit triggers", func() bool { return len(p.accepted("role-audit")) == 3 })
	p.settled(t)
	for _, id := range svix {
		if n := p.accepted("role-changed")[events.TransactionID(id, "role-changed")]; n != 1 {
			t.Errorf("after replay, svix %s: role-changed triggered %d times, want 1", id, n)
		}
		if n := p.accepted("role-audit")[events.TransactionID(id, "role-audit")]; n != 1 {
			t.Errorf("after replay, svix %s: role-audit triggered %d times, want 1", id, n)
		}
	}

	// --fresh notifies again, under new transactionIds.
	out = mustExec(t, p.env, 0, "replay", "--since", "1h", "--svix-id", svix[0], "--fresh", "--yes")
	if !strings.Contains(out, "AGAIN") {
		t.Errorf("a fresh replay's plan does not say it notifies again:\n%s", out)
	}
	eventstest.Eventually(t, 10*time.Second, "a fresh role-changed trigger", func() bool { return len(p.accepted("role-changed")) == 4 })
	p.settled(t)
	if got := p.accepted("role-changed"); len(got) != 4 || got[events.TransactionID(svix[0], "role-changed")] != 1 {
		t.Errorf("after a fresh replay, role-changed by transactionId: %v", got)
	}
}

func TestSinkDeadLetterRedrivenKeepsItsTransactionID(t *testing.T) {
	p := startPipeline(t)
	p.fake.SetWorkflow("role-changed", novufake.WorkflowNotFound())
	p.putRules(t, rulesFixed)
	svix := samples.NewSvixID()
	p.publish(t, svix)
	eventstest.Eventually(t, 10*time.Second, "a sink dead letter", func() bool {
		return len(p.deadLetters(t, ops.Selector{Stage: "sink"})) == 1
	})
	out := mustExec(t, p.env, 0, "dlq", "ls", "--workflow", "role-changed", "--json")
	var dl struct {
		Stage, Workflow, Reason string
		TransactionID           string `json:"transaction_id"`
	}
	if err := json.Unmarshal([]byte(out), &dl); err != nil {
		t.Fatal(err)
	}
	txn := events.TransactionID(svix, "role-changed")
	if dl.Stage != "sink" || dl.TransactionID != txn || !strings.Contains(dl.Reason, "workflow_not_found") {
		t.Fatalf("sink dead letter %+v, want transaction %s", dl, txn)
	}
	p.fake.SetWorkflow("role-changed", novufake.Status("processed"))
	mustExec(t, p.env, 0, "dlq", "redrive", "--stage", "sink", "--yes")
	eventstest.Eventually(t, 10*time.Second, "the redriven trigger", func() bool { return p.accepted("role-changed")[txn] == 1 })
	p.settled(t)
	if got := p.accepted("role-changed"); len(got) != 1 {
		t.Errorf("triggers by transactionId %v, want only %s", got, txn)
	}
	if n := len(p.deadLetters(t, ops.Selector{})); n != 0 {
		t.Errorf("DLQ holds %d dead letters after the redrive", n)
	}
}

func TestProvisionDryRunThenApply(t *testing.T) {
	p := startPipeline(t)
	drift := map[string]string{"NATS_URL": p.env["NATS_URL"], "ROUTES_KV_BUCKET": "ROUTES", "STREAM_DUPLICATE_WINDOW": "48h"}
	out := mustExec(t, drift, 0, "provision", "--dry-run")
	if !strings.Contains(out, "update stream CLERK: duplicate window 36h0m0s -> 48h0m0s") || !strings.Contains(out, "nothing applied") {
		t.Fatalf("provision --dry-run printed:\n%s", out)
	}
	dup := func() time.Duration {
		s, err := p.js.Stream(t.Context(), events.StreamClerk)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Duplicates
	}
	if got := dup(); got != 36*time.Hour {
		t.Fatalf("dry run changed CLERK's window to %v", got)
	}
	mustExec(t, drift, 0, "provision")
	if got := dup(); got != 48*time.Hour {
		t.Fatalf("provision left CLERK's window at %v", got)
	}
	if out := mustExec(t, drift, 0, "provision", "--dry-run"); !strings.Contains(out, "up to date") {
		t.Errorf("after provision, the plan is not empty:\n%s", out)
	}
	out = mustExec(t, p.env, 0, "status")
	for _, want := range []string{"stream   CLERK", "consumer CLERK/router", "dlq      0 dead letter(s)", "rules"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestRoutes(t *testing.T) {
	// Every rules document in the repository (a YAML file named *routes*) is
	// one the router accepts.
	root := filepath.Join("..", "..")
	var files []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if err == nil && strings.Contains(d.Name(), "routes") && !strings.Contains(path, "templates") && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no rules files found")
	}
	for _, f := range files {
		if out := mustExec(t, nil, 0, "routes", "check", f); !strings.Contains(out, "rules in force") {
			t.Errorf("routes check %s printed %q", f, out)
		}
	}
	for name, doc := range map[string]string{
		"unknown field":   "rules:\n  - match: user.created\n    workflow: [x]\n",
		"bad workflow id": "rules:\n  - match: user.created\n    workflows: [\"a.b\"]\n",
		"not yaml":        "rules: [\n",
	} {
		code, out, errOut := exec(t, nil, "routes", "check", writeFile(t, "bad.yaml", doc))
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "bad.yaml") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and one line naming the file", name, code, out, errOut)
		}
	}

	// routes test prints the router's commands as JSON lines, without NATS.
	type routed struct {
		WorkflowID    string `json:"workflowId"`
		TransactionID string `json:"transactionId"`
		DeadLetter    string `json:"deadLetter"`
	}
	got := jsonLines[routed](t, mustExec(t, nil, 0, "routes", "test", writeFile(t, "r.yaml", rulesAddFlow), "role.created", "--svix-id", "msg_1"))
	if len(got) != 2 || got[0].WorkflowID != "role-changed" || got[0].TransactionID != events.TransactionID("msg_1", "role-changed") || got[1].WorkflowID != "role-audit" {
		t.Errorf("routes test: %+v", got)
	}
	got = jsonLines[routed](t, mustExec(t, nil, 0, "routes", "test", writeFile(t, "r.yaml", rulesBroken), "role.created"))
	if len(got) != 1 || !strings.Contains(got[0].DeadLetter, "no recipient") {
		t.Errorf("routes test of an unroutable event: %+v", got)
	}

	// routes put of an invalid document leaves the stored value unchanged.
	_, js := eventstest.RunJetStream(t)
	env := map[string]string{"NATS_URL": natsURL(t, js)}
	if _, err := js.CreateKeyValue(t.Context(), events.RoutesBucket("ROUTES")); err != nil {
		t.Fatal(err)
	}
	mustExec(t, env, 0, "routes", "put", writeFile(t, "good.yaml", rulesFixed))
	mustExec(t, env, 2, "routes", "put", writeFile(t, "bad.yaml", "rules:\n  - match: user.created\n    workflow: [x]\n"))
	var stored struct {
		Revision uint64
		Value    string
	}
	if err := json.Unmarshal([]byte(mustExec(t, env, 0, "routes", "get", "--json")), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Revision != 1 || stored.Value != rulesFixed {
		t.Errorf("after an invalid put, stored rev %d %q, want rev 1 with the good rules", stored.Revision, stored.Value)
	}
}

func natsURL(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	return js.Conn().ConnectedUrl()
}

func TestUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"dlq", "ls", "--stage", "queue"},
		{"dlq", "ls", "--seq", "9-3"},
		{"dlq", "show", "x"},
		{"replay"},
		{"replay", "--since", "2h", "--until", "3h"},
		{"routes", "check"},
		{"routes", "chek", "rules.yaml"},
		{"dlq", "lss"},
		{"status", "--no-such-flag"},
	} {
		if code, _, errOut := exec(t, nil, args...); code != 2 {
			t.Errorf("clerknovu %v: exit %d (%s), want 2", args, code, errOut)
		}
	}
	// A group alone prints its help and succeeds, as cobra does.
	for _, group := range []string{"dlq", "routes"} {
		if code, out, errOut := exec(t, nil, group); code != 0 || !strings.Contains(out, "Available Commands") {
			t.Errorf("clerknovu %s: exit %d, stdout %q, stderr %q; want 0 and its help", group, code, out, errOut)
		}
	}
	if code, _, _ := exec(t, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "status"); code != 1 {
		t.Errorf("status without NATS: exit %d, want 1", code)
	}
}

// status exits 1 and names what is missing until provision creates it.
func TestStatusNamesMissingResources(t *testing.T) {
	_, js := eventstest.RunJetStream(t) // the streams, no consumers
	env := map[string]string{"NATS_URL": natsURL(t, js)}
	code, out, errOut := exec(t, env, "status")
	if code != 1 || !strings.Contains(out, "consumer CLERK/router         MISSING") || !strings.Contains(errOut, "consumer CLERK/router") {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	mustExec(t, env, 0, "provision")
	mustExec(t, env, 0, "status")
}
