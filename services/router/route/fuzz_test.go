package route

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// FuzzCommands runs the router's event → commands path (ParseEvent, Route
// with the built-in rules, Commands, events.EncodeCommand) on arbitrary bytes: never a
// panic; at most one command per target; each command valid, its
// transactionId derived from the svix-id and workflow, and its encoding
// valid JSON that decodes back to the same workflow and transaction, the
// same on a second run (a redelivery must produce the same bytes).
func FuzzCommands(f *testing.F) {
	for _, s := range samples.All() {
		f.Add(s.Body)
	}
	f.Add([]byte(`{"type":"email.created","data":{"slug":"magic_link_sign_in","to_email_address":"\u0000","user_id":null}}`))
	f.Add([]byte(`{"type":"user.created","data":{"id":"","email_addresses":[{"email_address":7}]}}`))
	f.Add([]byte(`{"type":"user.created","data":[]}`))
	rules := mustCompose(f, Defaults())
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := events.ParseEvent(body)
		if err != nil {
			return
		}
		targets, err := Route(rules, ev)
		if err != nil {
			return
		}
		src := Source{SvixID: "msg_fuzz"}
		cmds, err := Commands(ev, src, targets, BuildOptions{})
		if err != nil {
			return
		}
		if len(cmds) > len(targets) {
			t.Fatalf("%d commands for %d targets", len(cmds), len(targets))
		}
		again, _ := Commands(ev, src, targets, BuildOptions{})
		for i, cmd := range cmds {
			if err := cmd.Validate(); err != nil {
				t.Fatalf("command %d invalid: %v", i, err)
			}
			if want := events.TransactionID(src.SvixID, cmd.WorkflowID); cmd.TransactionID != want {
				t.Fatalf("transactionId %q, want %q", cmd.TransactionID, want)
			}
			b, err := events.EncodeCommand(cmd)
			if err != nil {
				t.Fatalf("encode command %d: %v", i, err)
			}
			var back struct {
				WorkflowID    string `json:"workflowId"`
				TransactionID string `json:"transactionId"`
			}
			if err := json.Unmarshal(b, &back); err != nil || !json.Valid(b) {
				t.Fatalf("encoded command %d is not valid JSON (%v): %q", i, err, b)
			}
			if back.TransactionID != cmd.TransactionID {
				t.Fatalf("encoded command %d: transactionId %q, want %q", i, back.TransactionID, cmd.TransactionID)
			}
			b2, err := events.EncodeCommand(again[i])
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("command %d encodes differently on a second run", i)
			}
		}
	})
}
