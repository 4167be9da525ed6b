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
	// Rule is the rule that produced the target, for logs.
	Rule *Rule
}

// slugData is the only field of data that routing reads.
type slugData struct {
	Slug *string `json:"slug"`
}

// Route returns the workflows ev goes to under rules: the rules of the most
// specific pattern that matches ev.Type (an exact type beats any pattern), each
// contributing its workflows, or the workflow of ev's data.slug, or its
// fallback template. A workflow appears at most once.
//
// It fails with [ErrNoRoute] when nothing routes ev, with [ErrInvalidWorkflow]
// when a fallback template cannot make a valid workflow id for ev, and with
// [events.ErrInvalidEvent] when a slug rule cannot read ev's data.
func Route(rules *Rules, ev events.Event) ([]Target, error) {
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
		targets []Target
		slug    string
		hasSlug bool
		decoded bool
	)
	add := func(wf string, r *Rule) {
		if slices.ContainsFunc(targets, func(t Target) bool { return t.WorkflowID == wf }) {
			return // the same workflow twice would share a transactionId: Novu would drop the second
		}
		targets = append(targets, Target{WorkflowID: wf, To: r.To, Rule: r})
	}
	var unmapped *Rule
	for _, r := range matched {
		if !r.slugBased() {
			for _, wf := range r.Workflows {
				add(wf, r)
			}
			continue
		}
		if !decoded {
			var err error
			slug, hasSlug, err = readSlug(ev)
			if err != nil {
				return nil, err
			}
			decoded = true
		}
		if wf, ok := r.Slugs[slug]; ok && hasSlug {
			add(wf, r)
			continue
		}
		if r.Fallback == "" {
			unmapped = r
			continue
		}
		if !hasSlug && renderTemplate(r.Fallback, "") != r.Fallback {
			return nil, fmt.Errorf("%w: %s fills %q from data.slug, and this %s has no slug", ErrInvalidWorkflow, r.Position(), r.Fallback, ev.Type)
		}
		wf := renderTemplate(r.Fallback, slug)
		if err := events.ValidateToken(wf); err != nil {
			return nil, fmt.Errorf("%w: %s: slug %q gives %q: %w", ErrInvalidWorkflow, r.Position(), slug, wf, err)
		}
		add(wf, r)
	}
	if len(targets) == 0 {
		if unmapped != nil {
			return nil, fmt.Errorf("%w: %s maps no workflow for slug %q and has no fallback", ErrNoRoute, unmapped.Position(), slug)
		}
		return nil, fmt.Errorf("%w: no workflow for %q", ErrNoRoute, ev.Type)
	}
	return targets, nil
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
