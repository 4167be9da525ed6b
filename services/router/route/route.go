package route

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/clerknovu/pipeline/pkg/events"
)

// Target is one workflow an event is routed to, and whom to address.
type Target struct {
	// WorkflowID is the Novu workflow id, a valid subject token.
	WorkflowID string
	// To is the rule's recipient.
	To Recipient
	// Payload is the payload the rule shaped, a JSON object; nil means the
	// event's data, unchanged.
	Payload json.RawMessage
	// Rule is the rule that produced the target, for logs.
	Rule *Rule
}

// slugData is the only field of data that slug routing reads.
type slugData struct {
	Slug *string `json:"slug"`
}

// Decision is what one rule of the winning pattern made of an event, for
// `clerknovu routes test` and debug logs.
type Decision struct {
	// Rule is the rule.
	Rule *Rule
	// Held reports whether the rule's when held (true for a rule without when).
	Held bool
	// Workflows are the workflows the rule contributed (none when it did not
	// hold, or maps no workflow for the event's slug).
	Workflows []string
	// Payload is the payload the rule shaped, nil when it has none or did not hold.
	Payload json.RawMessage
}

// Route returns the workflows ev goes to under rules: the rules of the most
// specific pattern that matches ev.Type (an exact type beats any pattern)
// whose when holds, each contributing its workflows, or the workflow of ev's
// data.slug, or its fallback template, with the payload it shapes. A
// workflow appears at most once.
//
// It fails with [ErrNoRoute] when nothing routes ev, with [ErrInvalidWorkflow]
// when a fallback template cannot make a valid workflow id for ev, with
// [ErrExpression] when a rule's expression fails on ev, and with
// [events.ErrInvalidEvent] when a slug rule or an expression cannot read ev's data.
func Route(rules *Rules, ev events.Event) ([]Target, error) {
	return evaluate(rules, ev, nil)
}

// Explain is [Route] that also says, rule by rule of the winning pattern,
// whether its when held, what it contributed and the payload it shaped. The
// decisions are returned even when err is not nil, up to the rule that failed.
func Explain(rules *Rules, ev events.Event) ([]Target, []Decision, error) {
	var decisions []Decision
	targets, err := evaluate(rules, ev, &decisions)
	return targets, decisions, err
}

// evaluate routes ev under rules. When decisions is not nil it appends to it
// what each rule of the winning pattern made of ev; [Route] passes nil so the
// hot path records nothing.
func evaluate(rules *Rules, ev events.Event, decisions *[]Decision) ([]Target, error) {
	if rules == nil {
		return nil, fmt.Errorf("%w: no rules loaded", ErrNoRoute)
	}
	matched := rules.lookup(ev.Type)
	if len(matched) == 0 {
		return nil, fmt.Errorf("%w: no rule matches %q", ErrNoRoute, ev.Type)
	}
	if matched[0].Drop {
		return nil, fmt.Errorf("%w: %s drops %q", ErrNoRoute, matched[0].Position(), ev.Type)
	}
	var (
		targets  []Target
		slug     string
		hasSlug  bool
		decoded  bool
		in       *exprInput
		unmapped *Rule
		unheld   *Rule
	)
	record := func(d Decision) {
		if decisions != nil {
			*decisions = append(*decisions, d)
		}
	}
	for _, r := range matched {
		d := Decision{Rule: r, Held: true}
		var payload json.RawMessage
		if r.cond != nil || len(r.shape) > 0 {
			if in == nil {
				var err error
				if in, err = newExprInput(ev); err != nil {
					return nil, err
				}
			}
			held, err := in.when(r)
			if err != nil {
				return nil, err
			}
			if d.Held = held; !held {
				unheld = r
				record(d)
				continue
			}
			if len(r.shape) > 0 {
				if payload, err = in.payload(r); err != nil {
					return nil, err
				}
				d.Payload = payload
			}
		}
		add := func(wf string) {
			if decisions != nil {
				d.Workflows = append(d.Workflows, wf)
			}
			if slices.ContainsFunc(targets, func(t Target) bool { return t.WorkflowID == wf }) {
				return // the same workflow twice would share a transactionId: Novu would drop the second
			}
			targets = append(targets, Target{WorkflowID: wf, To: r.To, Payload: payload, Rule: r})
		}
		wf, err := r.slugWorkflow(ev, &slug, &hasSlug, &decoded)
		switch {
		case err != nil:
			return nil, err
		case !r.slugBased():
			for _, wf := range r.Workflows {
				add(wf)
			}
		case wf == "":
			unmapped = r
		default:
			add(wf)
		}
		record(d)
	}
	if len(targets) == 0 {
		switch {
		case unmapped != nil:
			return nil, fmt.Errorf("%w: %s maps no workflow for slug %q and has no fallback", ErrNoRoute, unmapped.Position(), slug)
		case unheld != nil:
			return nil, fmt.Errorf("%w: the when of %s does not hold", ErrNoRoute, unheld.Position())
		}
		return nil, fmt.Errorf("%w: no workflow for %q", ErrNoRoute, ev.Type)
	}
	return targets, nil
}

// slugWorkflow returns the workflow a slug rule picks for ev ("" when it
// maps none), reading data.slug once per event into slug and hasSlug.
func (r *Rule) slugWorkflow(ev events.Event, slug *string, hasSlug, decoded *bool) (string, error) {
	if !r.slugBased() {
		return "", nil
	}
	if !*decoded {
		var err error
		if *slug, *hasSlug, err = readSlug(ev); err != nil {
			return "", err
		}
		*decoded = true
	}
	if wf, ok := r.Slugs[*slug]; ok && *hasSlug {
		return wf, nil
	}
	if r.Fallback == "" {
		return "", nil
	}
	if !*hasSlug && renderTemplate(r.Fallback, "") != r.Fallback {
		return "", fmt.Errorf("%w: %s fills %q from data.slug, and this %s has no slug", ErrInvalidWorkflow, r.Position(), r.Fallback, ev.Type)
	}
	wf := renderTemplate(r.Fallback, *slug)
	if err := events.ValidateToken(wf); err != nil {
		return "", fmt.Errorf("%w: %s: slug %q gives %q: %w", ErrInvalidWorkflow, r.Position(), *slug, wf, err)
	}
	return wf, nil
}

// readSlug returns data.slug; hasSlug is false when it is absent, null or "".
func readSlug(ev events.Event) (slug string, hasSlug bool, err error) {
	if len(ev.Data) == 0 {
		return "", false, nil
	}
	var d slugData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return "", false, fmt.Errorf("%w: %s data: %s", events.ErrInvalidEvent, ev.Type, decodeReason(err))
	}
	if d.Slug == nil || *d.Slug == "" {
		return "", false, nil
	}
	return *d.Slug, true, nil
}
