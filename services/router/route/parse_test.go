package route

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	doc := `# comments are fine
version: 1
mode: extend
rules:
  - match: user.created
    workflows: [welcome, crm-sync]
  - match: email.created
    slugs:
      magic_link_sign_in: login-link
    fallback: "mail-{slug}"
  - match: role.*
    workflows: [access-changed]
    to: {"type": "Topic", "topicKey": "security-admins", "exclude": ["user_1"]}
  - match: organization.deleted
    workflows: [org-gone]
    to:
      subscriberId: ops@example.com
  - match: session.created
    drop: true
`
	got, err := Parse("file routes.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Layer{Source: "file routes.yaml", Mode: ModeExtend, Rules: []Rule{
		{Match: "user.created", Workflows: []string{"welcome", "crm-sync"}, Source: "file routes.yaml", Index: 1, Line: 5},
		{Match: "email.created", Slugs: map[string]string{"magic_link_sign_in": "login-link"}, Fallback: "mail-{slug}", Source: "file routes.yaml", Index: 2, Line: 7},
		{Match: "role.*", Workflows: []string{"access-changed"}, To: Recipient{Kind: RecipientTopic, TopicKey: "security-admins", Exclude: []string{"user_1"}}, Source: "file routes.yaml", Index: 3, Line: 11},
		{Match: "organization.deleted", Workflows: []string{"org-gone"}, To: Recipient{Kind: RecipientSubscriber, SubscriberID: "ops@example.com"}, Source: "file routes.yaml", Index: 4, Line: 14},
		{Match: "session.created", Drop: true, Source: "file routes.yaml", Index: 5, Line: 18},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseJSON(t *testing.T) {
	got, err := Parse("kv ROUTES/rules rev 1", []byte(`{"mode":"replace","rules":[{"match":"*","workflows":["audit"],"to":{"type":"Topic","topicKey":"ops"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != ModeReplace || len(got.Rules) != 1 || got.Rules[0].To.TopicKey != "ops" {
		t.Errorf("Parse = %+v", got)
	}
}

func TestParseEmptyRules(t *testing.T) {
	got, err := Parse("kv", []byte("mode: replace\nrules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	rules := mustCompose(t, Defaults(), got)
	if rules.Len() != 0 {
		t.Errorf("replace with no rules: %d rules in force, want 0", rules.Len())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every one must appear in the message
	}{
		{name: "empty document", doc: "", want: []string{"the document is empty"}},
		{name: "only comments", doc: "# nothing\n", want: []string{"the document is empty"}},
		{name: "YAML syntax error", doc: "rules: [\n  - match: a\n", want: []string{"file r.yaml: ", "line"}},
		{name: "not a mapping", doc: "- match: user.created\n", want: []string{"cannot unmarshal"}},
		{name: "two documents", doc: "rules: []\n---\nrules: []\n", want: []string{"more than one YAML document"}},
		{name: "no rules key", doc: "mode: extend\n", want: []string{"no rules: key"}},
		{name: "typo at the top level", doc: "rule:\n  - match: user.created\n", want: []string{`line 1: unknown field "rule" at the top level (known: version, mode, rules, sync)`}},
		{name: "typo in a rule", doc: "rules:\n  - match: user.created\n    workflow: user-created\n",
			want: []string{`line 3: unknown field "workflow" in a rule (known: match, workflows, slugs, fallback, drop, to, when, payload)`}},
		{name: "typo in to", doc: "rules:\n  - match: role.created\n    workflows: [r]\n    to: {type: Topic, topic: ops}\n",
			want: []string{`unknown field "topic" in to: (known: type, subscriberId, topicKey, exclude)`}},
		{name: "workflows is not a list", doc: "rules:\n  - match: a.b\n    workflows: {x: y}\n", want: []string{"line 3", "cannot unmarshal"}},
		{name: "bad version", doc: "version: 2\nrules: []\n", want: []string{"version 2: the only version is 1"}},
		{name: "bad mode", doc: "mode: merge\nrules: []\n", want: []string{`mode "merge": want extend or replace`}},
		{name: "workflow id with a space", doc: "rules:\n  - match: user.created\n    workflows: [user created]\n",
			want: []string{`file r.yaml: rule 1 (line 2, match "user.created"): workflow "user created" is not a valid workflow id`}},
		{name: "workflow id with a dot", doc: "rules:\n  - match: user.created\n    workflows: [user.created]\n",
			want: []string{`rule 1 (line 2, match "user.created"): workflow "user.created"`, "holds a dot"}},
		{name: "workflow id with a wildcard", doc: "rules:\n  - match: user.created\n    workflows: [\"user-*\"]\n",
			want: []string{`workflow "user-*" is not a valid workflow id`}},
		{name: "the position of the second rule", doc: "rules:\n  - match: user.created\n    workflows: [ok]\n\n  - match: session.created\n    workflows: [\"bad id\"]\n",
			want: []string{`rule 2 (line 5, match "session.created")`}},
		{name: "empty match", doc: "rules:\n  - workflows: [a]\n", want: []string{"match is empty"}},
		{name: "match with a space", doc: "rules:\n  - match: user created\n    workflows: [a]\n", want: []string{`match "user created": want dot-separated tokens`}},
		{name: "'>' not last", doc: "rules:\n  - match: user.>.x\n    workflows: [a]\n", want: []string{"'>' may only be the last token"}},
		{name: "no workflow", doc: "rules:\n  - match: user.created\n", want: []string{"names no workflow: set workflows, slugs or fallback"}},
		{name: "workflows and slugs", doc: "rules:\n  - match: email.created\n    workflows: [a]\n    slugs: {x: b}\n", want: []string{"set either workflows or slugs/fallback"}},
		{name: "drop with a workflow", doc: "rules:\n  - match: user.created\n    drop: true\n    workflows: [a]\n", want: []string{"drop: true names no workflows"}},
		{name: "drop and route one pattern", doc: "rules:\n  - match: user.created\n    workflows: [a]\n  - match: user.created\n    drop: true\n",
			want: []string{"rule 2 (line 4", "drops events that rule 1 (line 2) routes"}},
		{name: "same workflow twice for one pattern", doc: "rules:\n  - match: user.*\n    workflows: [a]\n  - match: user.*\n    workflows: [a]\n    to: {topicKey: t}\n",
			want: []string{`workflow "a" is already routed for this pattern by rule 1 (line 2)`}},
		{name: "workflow listed twice", doc: "rules:\n  - match: user.*\n    workflows: [a, a]\n", want: []string{`workflow "a" is listed twice`}},
		{name: "slug mapped to a bad id", doc: "rules:\n  - match: email.created\n    slugs: {invitation: \"in vite\"}\n", want: []string{`slug "invitation": workflow "in vite"`}},
		{name: "fallback with an unknown placeholder", doc: "rules:\n  - match: email.created\n    fallback: \"email-{type}\"\n", want: []string{`fallback "email-{type}": the only placeholder is {slug}`}},
		{name: "fallback that can never be valid", doc: "rules:\n  - match: email.created\n    fallback: \"email {slug}\"\n", want: []string{`fallback "email {slug}" does not give a valid workflow id`}},
		{name: "lower-case recipient type", doc: "rules:\n  - match: role.created\n    workflows: [a]\n    to: {type: topic, topicKey: ops}\n", want: []string{`to: type "topic": want Event, Subscriber or Topic`}},
		{name: "topic without key", doc: "rules:\n  - match: role.created\n    workflows: [a]\n    to: {type: Topic}\n", want: []string{"to: type Topic needs a topicKey"}},
		{name: "topic key Novu refuses", doc: "rules:\n  - match: role.created\n    workflows: [a]\n    to: {topicKey: \"ops team\"}\n", want: []string{`to: topicKey "ops team"`}},
		{name: "subscriber id Novu refuses", doc: "rules:\n  - match: role.created\n    workflows: [a]\n    to: {subscriberId: \"a b\"}\n", want: []string{`to: subscriberId "a b"`}},
		{name: "both ids without a type", doc: "rules:\n  - match: role.created\n    workflows: [a]\n    to: {subscriberId: a, topicKey: b}\n", want: []string{"to: set type (Subscriber or Topic)"}},
		{name: "event recipient with an id", doc: "rules:\n  - match: role.created\n    workflows: [a]\n    to: {type: Event, topicKey: b}\n", want: []string{"to: type Event takes no"}},
		{name: "every problem at once, on one line", doc: "mode: merge\nrules:\n  - match: a.b\n    workflows: [\"x y\"]\n  - match: \"\"\n    workflows: [z]\n",
			want: []string{`mode "merge"`, `rule 1 (line 3, match "a.b"): workflow "x y"`, "rule 2 (line 5", "; "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("file r.yaml", []byte(tt.doc))
			if !errors.Is(err, ErrInvalidRules) {
				t.Fatalf("Parse error = %v, want ErrInvalidRules", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans lines: %q", msg)
			}
			if strings.Contains(msg, "route.") {
				t.Errorf("message names Go types: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q\n  does not say %q", msg, w)
				}
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	if rules := mustCompose(t, Defaults()); rules.Len() != 3 {
		t.Errorf("defaults: %d rules, want 3", rules.Len())
	}
}

// TestDocExamples keeps docs/routing.md honest: every YAML example in it loads.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "routing.md"))
	if err != nil {
		t.Fatalf("docs/routing.md: %v", err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 5 {
		t.Fatalf("found %d YAML examples, want at least 5", len(blocks))
	}
	for i, b := range blocks {
		example, _, _ := strings.Cut(b, "```")
		l, err := Parse("example", []byte(example))
		if err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, example)
			continue
		}
		if _, err := Compose(Defaults(), l); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
}
