package route

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

// rulesOf parses and composes a rules document in replace mode.
func rulesOf(t *testing.T, doc string) *Rules {
	t.Helper()
	l, err := Parse("file routes.yaml", []byte("mode: replace\n"+doc))
	if err != nil {
		t.Fatal(err)
	}
	return mustCompose(t, l)
}

func TestWhen(t *testing.T) {
	tests := []struct {
		name    string
		when    string
		fixture string
		data    string // replaces the fixture's data when set
		want    bool
		wantErr error
	}{
		{name: "true", when: `data.public_metadata.plan == 'pro'`, fixture: "user.created", want: true},
		{name: "false", when: `data.public_metadata.plan == 'free'`, fixture: "user.created", want: false},
		{name: "a missing field is false", when: `data.public_metadata.tier == 'gold'`, fixture: "user.created", want: false},
		{name: "a missing field is false even under !=", when: `data.public_metadata.tier != 'gold'`, fixture: "user.created", want: false},
		{name: "a missing parent is false", when: `data.nothing.here.plan == 'pro'`, fixture: "user.created", want: false},
		{name: "a null field is false", when: `data.external_id == nil`, fixture: "user.created", want: false},
		{name: "?? handles the missing field itself", when: `(data.public_metadata.tier ?? 'basic') == 'basic'`, fixture: "user.created", want: true},
		{name: "an index out of range is missing", when: `data.email_addresses[3].email_address == 'x'`, fixture: "user.created", want: false},
		{name: "delivered_by_clerk false", when: `data.delivered_by_clerk == false`, fixture: "email.created.magic_link_sign_in", want: true},
		{name: "delivered_by_clerk true", when: `data.delivered_by_clerk == false`, fixture: "email.created.new_device_sign_in", want: false},
		{name: "type and timestamp", when: `type == 'user.created' && timestamp > 0`, fixture: "user.created", want: true},
		{name: "an integer beyond 2^53 compares exactly", when: `data.public_metadata.seats == 9007199254740993`, fixture: "user.created", want: true},
		{name: "an integer beyond 2^53 is not its float neighbour", when: `data.public_metadata.seats == 9007199254740992`, fixture: "user.created", want: false},
		{name: "builtins over the data", when: `all(data.email_addresses, .verification.status == 'verified')`, fixture: "user.created", want: true},
		{name: "a field missing inside a builtin is nil, not a failure", when: `any(data.email_addresses, .nope.deeper == 'x')`, fixture: "user.created", want: false},
		{name: "data that is not an object: every field is missing", when: `data.id == 'x'`, fixture: "user.created", data: `[1,2]`, want: false},
		{name: "a run-time type error dead-letters", when: `data.first_name > 3`, fixture: "user.created", wantErr: ErrExpression},
		{name: "a run-time error is permanent for the router", when: `data.first_name > 3`, fixture: "user.created", wantErr: events.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := fixture(t, tt.fixture)
			if tt.data != "" {
				ev.Data = json.RawMessage(tt.data)
			}
			rules := rulesOf(t, "rules:\n  - match: "+ev.Type+"\n    when: "+yamlQuote(tt.when)+"\n    workflows: [w]\n")
			targets, err := Route(rules, ev)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), `file routes.yaml: rule 1 (line 3, match "user.created"): when`) {
					t.Errorf("err = %v, want the rule's position", err)
				}
			case tt.want:
				if err != nil || len(targets) != 1 {
					t.Fatalf("Route = %v, %v; want one target", targets, err)
				}
			default:
				if !errors.Is(err, ErrNoRoute) {
					t.Fatalf("Route = %v, %v; want ErrNoRoute", targets, err)
				}
			}
		})
	}
}

func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestWhenSelectsRules: of several rules of one pattern, only those whose
// when holds fire; Explain says which.
func TestWhenSelectsRules(t *testing.T) {
	rules := rulesOf(t, `rules:
  - match: email.created
    when: "data.delivered_by_clerk == false"
    slugs: {magic_link_sign_in: magic-v2}
  - match: email.created
    when: "data.delivered_by_clerk == true"
    workflows: [audit-clerk-delivered]
  - match: email.created
    workflows: [always]
`)
	ev, _ := fixture(t, "email.created.magic_link_sign_in")
	targets, decisions, err := Explain(rules, ev)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range targets {
		got = append(got, tg.WorkflowID)
	}
	if strings.Join(got, ",") != "magic-v2,always" {
		t.Errorf("workflows = %v, want magic-v2, always", got)
	}
	if len(decisions) != 3 || !decisions[0].Held || decisions[1].Held || !decisions[2].Held {
		t.Fatalf("decisions = %+v, want held, not held, held", decisions)
	}
	if len(decisions[1].Workflows) != 0 || decisions[0].Workflows[0] != "magic-v2" {
		t.Errorf("decisions = %+v", decisions)
	}
}

func TestPayload(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		payload string
		want    string
		wantErr error
	}{
		{
			name: "unicode and large integers kept exact", fixture: "user.created",
			payload: `{firstName: "data.first_name", lastName: "data.last_name", seats: "data.public_metadata.seats", ids: "data.public_metadata.nested.deep[0].ids", crm: "data.private_metadata.crm.account", theme: "data.unsafe_metadata.theme"}`,
			want:    `{"crm":18446744073709551615,"firstName":"Zoë","ids":[12345678901234567890,-9223372036854775808],"lastName":"Núñez-Łukasiewicz","seats":9007199254740993,"theme":"<dark> & \"bold\""}`,
		},
		{
			name: "a missing field leaves its key out", fixture: "user.created",
			payload: `{plan: "data.public_metadata.plan", tier: "data.public_metadata.tier", ext: "data.external_id"}`,
			want:    `{"plan":"pro"}`,
		},
		{
			name: "computed values and the primary email", fixture: "user.updated",
			payload: `{email: "filter(data.email_addresses, .id == data.primary_email_address_id)[0].email_address", name: "data.first_name + ' ' + data.last_name", count: "len(data.email_addresses)"}`,
			want:    `{"count":2,"email":"misaki@example.jp","name":"美咲 🌸 佐藤"}`,
		},
		{
			name: "whole objects keep their numbers", fixture: "user.created",
			payload: `{meta: "data.public_metadata"}`,
			want:    `{"meta":{"nested":{"deep":[{"ids":[12345678901234567890,-9223372036854775808]}],"ratio":1.0000000000000002},"plan":"pro","seats":9007199254740993}}`,
		},
		{
			name: "a run-time failure names the key", fixture: "user.created",
			payload: `{bad: "data.first_name * 2"}`, wantErr: ErrExpression,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := fixture(t, tt.fixture)
			rules := rulesOf(t, "rules:\n  - match: "+ev.Type+"\n    workflows: [w]\n    payload: "+tt.payload+"\n")
			targets, err := Route(rules, ev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if !strings.Contains(err.Error(), "rule 1 (line 3") || !strings.Contains(err.Error(), "payload bad") {
					t.Errorf("err = %v, want the rule's position and the key", err)
				}
				return
			}
			cmds, err := Commands(ev, Source{SvixID: "msg_1"}, targets, BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(cmds[0].Payload); got != tt.want {
				t.Errorf("payload =\n%s\nwant\n%s", got, tt.want)
			}
			if cmds[0].TransactionID != events.TransactionID("msg_1", "w") {
				t.Errorf("transactionId = %s", cmds[0].TransactionID)
			}
			body, err := events.EncodeCommand(cmds[0])
			if err != nil {
				t.Fatal(err)
			}
			back, err := events.ParseCommand(body)
			if err != nil || string(back.Payload) != tt.want {
				t.Errorf("encoded payload = %s, %v; want %s", back.Payload, err, tt.want)
			}
		})
	}
}

// TestNoPayloadKeepsData: without payload (and with a when), the payload is
// data byte for byte.
func TestNoPayloadKeepsData(t *testing.T) {
	ev, _ := fixture(t, "user.created")
	rules := rulesOf(t, "rules:\n  - match: user.created\n    when: \"data.public_metadata.plan == 'pro'\"\n    workflows: [pro-welcome]\n")
	targets, err := Route(rules, ev)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := Commands(ev, Source{SvixID: "msg_1"}, targets, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(cmds[0].Payload) != string(ev.Data) {
		t.Errorf("payload changed:\n%s\nwant\n%s", cmds[0].Payload, ev.Data)
	}
}

func TestExpressionLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			name: "unknown name",
			doc:  "rules:\n  - match: user.created\n    workflows: [w]\n  - match: user.updated\n    when: \"dta.plan == 'pro'\"\n    workflows: [w]\n",
			want: `file routes.yaml: rule 2 (line 4, match "user.updated"): when "dta.plan == 'pro'": unknown name dta`,
		},
		{
			name: "type error",
			doc:  "rules:\n  - match: user.created\n    when: \"type + 1 == 2\"\n    workflows: [w]\n",
			want: `rule 1 (line 2, match "user.created"): when "type + 1 == 2": invalid operation: + (mismatched types string and int)`,
		},
		{
			name: "a condition that is not a boolean",
			doc:  "rules:\n  - match: user.created\n    when: \"type\"\n    workflows: [w]\n",
			want: `when "type": expected bool, but got string`,
		},
		{
			name: "syntax error in a payload key",
			doc:  "rules:\n  - match: user.created\n    workflows: [w]\n    payload: {name: \"data.first_name +\"}\n",
			want: `rule 1 (line 2, match "user.created"): payload name "data.first_name +": unexpected token EOF`,
		},
		{
			name: "now is not allowed",
			doc:  "rules:\n  - match: user.created\n    when: \"now() > date('2020-01-01')\"\n    workflows: [w]\n",
			want: `unknown name now`,
		},
		{
			name: "drop takes no when",
			doc:  "rules:\n  - match: user.created\n    drop: true\n    when: \"true\"\n",
			want: `a rule with drop: true names no workflows, slugs, fallback, to, when or payload`,
		},
		{
			name: "too long",
			doc:  "rules:\n  - match: user.created\n    when: \"" + strings.Repeat("true && ", 300) + "true\"\n    workflows: [w]\n",
			want: `bytes, at most 2000`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("file routes.yaml", []byte(tt.doc))
			if !errors.Is(err, ErrInvalidRules) {
				t.Fatalf("err = %v, want ErrInvalidRules", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err =\n%v\nwant it to contain\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err is not one line: %q", err)
			}
		})
	}
}
