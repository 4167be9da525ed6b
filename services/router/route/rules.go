package route

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events"
)

// Mode says how a layer of rules combines with the layers below it.
type Mode string

const (
	// ModeExtend keeps the rules below and replaces, for each match pattern
	// the layer names, every lower rule with that same pattern. It is the default.
	ModeExtend Mode = "extend"
	// ModeReplace discards every rule below: only this layer's rules (and the
	// layers above it) are in force.
	ModeReplace Mode = "replace"
)

// RecipientKind says whom a rule's commands are addressed to.
type RecipientKind string

const (
	// RecipientEvent addresses the person the event is about, built by [Build].
	// It is the default.
	RecipientEvent RecipientKind = "Event"
	// RecipientSubscriber addresses a fixed Novu subscriber id.
	RecipientSubscriber RecipientKind = "Subscriber"
	// RecipientTopic addresses a Novu topic, for events about no person.
	RecipientTopic RecipientKind = "Topic"
)

// Recipient is whom a rule sends to.
type Recipient struct {
	// Kind is Event (the zero value means Event), Subscriber or Topic.
	Kind RecipientKind
	// SubscriberID is the fixed subscriber of a Subscriber recipient.
	SubscriberID string
	// TopicKey is the Novu topic of a Topic recipient.
	TopicKey string
	// Exclude lists subscriber ids a Topic recipient leaves out.
	Exclude []string
}

// set reports whether any field of r is set.
func (r Recipient) set() bool {
	return r.Kind != "" || r.SubscriberID != "" || r.TopicKey != "" || len(r.Exclude) > 0
}

// kind returns r's kind with the zero value read as [RecipientEvent].
func (r Recipient) kind() RecipientKind {
	if r.Kind == "" {
		return RecipientEvent
	}
	return r.Kind
}

// SlugPlaceholder is the only placeholder of a fallback template: the event's
// data.slug with every '_' turned into '-'.
const SlugPlaceholder = "{slug}"

// Rule routes the events whose type matches Match to Novu workflows.
type Rule struct {
	// Match is an event type (user.created) or a pattern: '*' stands for
	// exactly one token (organizationMembership.*), a final '>' for one or
	// more tokens, and '*' or '>' alone for every event type.
	Match string
	// Workflows are the workflow ids every matching event is sent to.
	Workflows []string
	// Slugs maps data.slug (email.created, sms.created) to a workflow id.
	Slugs map[string]string
	// Fallback is the workflow id template for a slug not in Slugs, e.g.
	// "email-{slug}". Empty means an unmapped slug is not routed.
	Fallback string
	// Drop stops routing the matching events: they are acked and skipped.
	Drop bool
	// To is whom the commands are addressed to (default: the event's person).
	To Recipient
	// When is a condition (an expr-lang expression over data, type and
	// timestamp): the rule fires only on the events for which it holds. A
	// condition that reads a field the event does not have (absent or null)
	// is false. Empty means always.
	When string
	// Payload shapes the commands' payload: each key's value is an
	// expression. Empty means the payload is the event's data, byte for byte.
	Payload map[string]string

	// Source, Index (1-based) and Line say where the rule was written, for messages.
	Source string
	Index  int
	Line   int

	pat   pattern
	cond  *program       // compiled When, nil when empty
	shape []payloadField // compiled Payload, sorted by key
}

// Position describes where r was written, e.g.
// `file routes.yaml: rule 3 (line 12, match "user.created")`.
func (r *Rule) Position() string {
	if r.Source == "" {
		return r.localPosition()
	}
	return r.Source + ": " + r.localPosition()
}

// localPosition is Position without the source.
func (r *Rule) localPosition() string {
	var b strings.Builder
	b.WriteString("rule ")
	b.WriteString(strconv.Itoa(r.Index))
	b.WriteString(" (")
	if r.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(r.Line))
		b.WriteString(", ")
	}
	b.WriteString("match ")
	b.WriteString(strconv.Quote(r.Match))
	b.WriteString(")")
	return b.String()
}

// slugBased reports whether r picks its workflow by data.slug.
func (r *Rule) slugBased() bool { return len(r.Slugs) > 0 || r.Fallback != "" }

// Layer is one document of rules: the defaults, the rules file or the KV value.
type Layer struct {
	// Source names the layer in messages: "defaults", "file routes.yaml", "kv ROUTES/rules rev 4".
	Source string
	// Mode is how the layer combines with the ones below (default extend).
	Mode Mode
	// Rules in the order they were written.
	Rules []Rule
	// Sync is what the layer mirrors into Novu; nil leaves the layers below
	// in force (in extend mode), a replace layer without it syncs nothing.
	Sync *Sync
}

// Rules is the routing table in force: the layers composed by [Compose]. It is
// immutable and safe for concurrent use.
type Rules struct {
	exact    map[string][]*Rule
	patterns []group // most specific first
	count    int
	summary  string
	sync     Sync
}

// group is the rules of one match pattern.
type group struct {
	pat   pattern
	rules []*Rule
}

// Len returns how many rules are in force.
func (rs *Rules) Len() int { return rs.count }

// String describes where the rules in force come from, for logs and /readyz.
func (rs *Rules) String() string { return rs.summary }

// Compose validates the layers and stacks them, lowest first (defaults, then
// the rules file, then the KV value). A layer in extend mode replaces, pattern
// by pattern, the rules of the layers below; a layer in replace mode discards
// them all. Errors wrap [ErrInvalidRules].
func Compose(layers ...Layer) (*Rules, error) {
	type entry struct {
		key   string
		rules []*Rule
	}
	var table []entry // insertion-ordered map: pattern key → rules
	find := func(key string) int {
		return slices.IndexFunc(table, func(e entry) bool { return e.key == key })
	}
	var parts []string
	var sync Sync
	for _, l := range layers {
		rules := slices.Clone(l.Rules)
		if err := l.validate(rules); err != nil { // fills in each rule's pattern and compiled expressions
			return nil, err
		}
		mode := l.Mode
		if mode == "" {
			mode = ModeExtend
		}
		if mode == ModeReplace {
			table = table[:0]
			sync = Sync{}
		}
		if l.Sync != nil {
			sync = *l.Sync
		}
		seen := map[string]bool{}
		for i := range rules {
			r := &rules[i]
			j := find(r.pat.key)
			switch {
			case j < 0:
				table = append(table, entry{key: r.pat.key, rules: []*Rule{r}})
			case !seen[r.pat.key]: // first rule of this layer for the pattern: replaces the lower ones
				table[j].rules = []*Rule{r}
			default:
				table[j].rules = append(table[j].rules, r)
			}
			seen[r.pat.key] = true
		}
		if len(parts) == 0 { // the bottom layer replaces nothing: its mode says nothing
			parts = append(parts, fmt.Sprintf("%s (%s)", l.Source, rulesCount(len(l.Rules))))
		} else {
			parts = append(parts, fmt.Sprintf("%s (%s, %s)", l.Source, mode, rulesCount(len(l.Rules))))
		}
	}
	rs := &Rules{exact: map[string][]*Rule{}, sync: sync}
	for _, e := range table {
		p := e.rules[0].pat
		rs.count += len(e.rules)
		if p.exact {
			rs.exact[p.key] = e.rules
			continue
		}
		rs.patterns = append(rs.patterns, group{pat: p, rules: e.rules})
	}
	slices.SortStableFunc(rs.patterns, func(a, b group) int { return compareSpecificity(a.pat, b.pat) })
	rs.summary = fmt.Sprintf("%s in force from %s", rulesCount(rs.count), strings.Join(parts, " + "))
	if sync.Enabled() {
		rs.summary += "; sync: " + sync.String()
	}
	return rs, nil
}

func rulesCount(n int) string {
	if n == 1 {
		return "1 rule"
	}
	return strconv.Itoa(n) + " rules"
}

// lookup returns the rules of the most specific pattern that matches typ.
func (rs *Rules) lookup(typ string) []*Rule {
	if rules, ok := rs.exact[typ]; ok {
		return rules
	}
	for i := range rs.patterns {
		if rs.patterns[i].pat.matches(typ) {
			return rs.patterns[i].rules
		}
	}
	return nil
}

// Validate checks every rule of l and reports all problems at once, in one
// line, wrapping [ErrInvalidRules].
func (l Layer) Validate() error {
	return l.validate(slices.Clone(l.Rules))
}

// validate is Validate over rules, a copy of l.Rules that it completes in
// place: each rule's Index and Source when unset, its pattern and its
// compiled when and payload, for [Compose] to keep.
func (l Layer) validate(rules []Rule) error {
	var problems []string
	switch l.Mode {
	case "", ModeExtend, ModeReplace:
	default:
		problems = append(problems, fmt.Sprintf("mode %q: want extend or replace", l.Mode))
	}

	if l.Sync != nil {
		problems = append(problems, l.Sync.validate()...)
	}
	byPattern := map[string]*patternState{}
	for i := range rules {
		r := &rules[i]
		if r.Index == 0 {
			r.Index = i + 1
		}
		if r.Source == "" {
			r.Source = l.Source
		}
		var errs []string
		p, err := compilePattern(r.Match)
		if err != nil {
			errs = append(errs, err.Error())
		}
		errs = append(errs, r.validate()...)
		if err == nil {
			r.pat = p
			st := byPattern[p.key]
			if st == nil {
				st = &patternState{}
				byPattern[p.key] = st
			}
			switch {
			case r.Drop && st.others != nil:
				errs = append(errs, fmt.Sprintf("drops events that %s routes; remove one of them", st.others.shortPosition()))
			case !r.Drop && st.drop != nil:
				errs = append(errs, fmt.Sprintf("routes events that %s drops; remove one of them", st.drop.shortPosition()))
			}
			if r.Drop {
				st.drop = r
			} else if st.others == nil {
				st.others = r
			}
			for _, c := range r.staticTriggers() {
				if prev := st.conflict(c); prev != nil {
					errs = append(errs, fmt.Sprintf("workflow %q is already routed for this pattern by %s: one event can trigger a workflow once", c.workflow, prev.shortPosition()))
					continue
				}
				st.triggers = append(st.triggers, ruleTrigger{trigger: c, rule: r})
			}
		}
		for _, e := range errs {
			problems = append(problems, r.localPosition()+": "+e)
		}
	}
	if len(problems) > 0 {
		source := l.Source
		if source == "" {
			source = "rules"
		}
		return fmt.Errorf("%w: %s: %s", ErrInvalidRules, source, strings.Join(problems, "; "))
	}
	return nil
}

// shortPosition is Position without the source, for cross-references inside one layer.
func (r *Rule) shortPosition() string {
	if r.Line > 0 {
		return fmt.Sprintf("rule %d (line %d)", r.Index, r.Line)
	}
	return fmt.Sprintf("rule %d", r.Index)
}

// trigger is a workflow a rule names literally, and the slug it needs ("": any event).
type trigger struct {
	slug, workflow string
}

type ruleTrigger struct {
	trigger
	rule *Rule
}

// patternState tracks, while validating a layer, the rules of one pattern.
type patternState struct {
	drop, others *Rule
	triggers     []ruleTrigger
}

// conflict returns the rule that already triggers c's workflow for an event
// that c also fires on, or nil.
func (st *patternState) conflict(c trigger) *Rule {
	for _, t := range st.triggers {
		if t.workflow == c.workflow && (t.slug == "" || c.slug == "" || t.slug == c.slug) {
			return t.rule
		}
	}
	return nil
}

// staticTriggers lists the workflow ids r names literally.
func (r *Rule) staticTriggers() []trigger {
	out := make([]trigger, 0, len(r.Workflows)+len(r.Slugs))
	for i, wf := range r.Workflows {
		if !slices.Contains(r.Workflows[:i], wf) { // a repeat is reported as "listed twice"
			out = append(out, trigger{workflow: wf})
		}
	}
	for _, k := range sortedKeys(r.Slugs) {
		out = append(out, trigger{slug: k, workflow: r.Slugs[k]})
	}
	return out
}

// validate checks r's fields, except Match; it returns one message per problem.
func (r *Rule) validate() []string {
	var errs []string
	switch {
	case r.Drop && (len(r.Workflows) > 0 || r.slugBased() || r.To.set() || r.When != "" || len(r.Payload) > 0):
		errs = append(errs, "a rule with drop: true names no workflows, slugs, fallback, to, when or payload")
	case r.Drop:
	case len(r.Workflows) > 0 && r.slugBased():
		errs = append(errs, "set either workflows or slugs/fallback, not both (write two rules with the same match to do both)")
	case len(r.Workflows) == 0 && !r.slugBased():
		errs = append(errs, "names no workflow: set workflows, slugs or fallback (or drop: true to skip these events)")
	}
	seen := map[string]bool{}
	for _, wf := range r.Workflows {
		if err := validateWorkflowID(wf); err != nil {
			errs = append(errs, err.Error())
		}
		if seen[wf] {
			errs = append(errs, fmt.Sprintf("workflow %q is listed twice", wf))
		}
		seen[wf] = true
	}
	for _, slug := range sortedKeys(r.Slugs) {
		if strings.TrimSpace(slug) == "" {
			errs = append(errs, "slugs has an empty slug")
		}
		if err := validateWorkflowID(r.Slugs[slug]); err != nil {
			errs = append(errs, fmt.Sprintf("slug %q: %v", slug, err))
		}
	}
	if r.Fallback != "" {
		if err := validateTemplate(r.Fallback); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if !r.Drop {
		errs = append(errs, r.To.validate()...)
		errs = append(errs, r.compile()...)
	}
	return errs
}

// validateWorkflowID checks that id is one subject token, as
// novu.trigger.<workflowId> needs.
func validateWorkflowID(id string) error {
	if err := events.ValidateToken(id); err != nil {
		return fmt.Errorf("workflow %q is not a valid workflow id (letters, digits, '-' and '_'): %w", id, err)
	}
	return nil
}

// validateTemplate checks a fallback template: only the {slug} placeholder,
// and a valid workflow id once it is filled.
func validateTemplate(tpl string) error {
	rest := strings.ReplaceAll(tpl, SlugPlaceholder, "")
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("fallback %q: the only placeholder is %s", tpl, SlugPlaceholder)
	}
	if err := events.ValidateToken(strings.ReplaceAll(tpl, SlugPlaceholder, "x")); err != nil {
		return fmt.Errorf("fallback %q does not give a valid workflow id (letters, digits, '-' and '_' around %s): %w", tpl, SlugPlaceholder, err)
	}
	return nil
}

// renderTemplate fills tpl's {slug} with slug, '_' turned into '-'.
func renderTemplate(tpl, slug string) string {
	if !strings.Contains(tpl, SlugPlaceholder) {
		return tpl
	}
	return strings.ReplaceAll(tpl, SlugPlaceholder, strings.ReplaceAll(slug, "_", "-"))
}

// maxExclude is Novu's bound on a topic recipient's exclude list.
const maxExclude = 100

// validate checks the recipient fields against its kind and Novu's id rules.
func (to Recipient) validate() []string {
	var errs []string
	switch to.kind() {
	case RecipientEvent:
		switch {
		case to.Kind == "" && to.set():
			errs = append(errs, "to: set type (Subscriber or Topic), or exactly one of subscriberId and topicKey")
		case to.set() && (to.SubscriberID != "" || to.TopicKey != "" || len(to.Exclude) > 0):
			errs = append(errs, "to: type Event takes no subscriberId, topicKey or exclude")
		}
	case RecipientSubscriber:
		switch {
		case to.SubscriberID == "":
			errs = append(errs, "to: type Subscriber needs a subscriberId")
		case !validSubscriberID(to.SubscriberID):
			errs = append(errs, fmt.Sprintf("to: subscriberId %q: want letters, digits and _ : . - only, or an email address", to.SubscriberID))
		}
		if to.TopicKey != "" || len(to.Exclude) > 0 {
			errs = append(errs, "to: type Subscriber takes no topicKey or exclude")
		}
	case RecipientTopic:
		switch {
		case to.TopicKey == "":
			errs = append(errs, "to: type Topic needs a topicKey")
		case !validNovuKey(to.TopicKey):
			errs = append(errs, fmt.Sprintf("to: topicKey %q: want letters, digits and _ : . - only", to.TopicKey))
		}
		if to.SubscriberID != "" {
			errs = append(errs, "to: type Topic takes no subscriberId (use exclude to leave subscribers out)")
		}
		if len(to.Exclude) > maxExclude {
			errs = append(errs, fmt.Sprintf("to: exclude lists %d subscribers, Novu takes at most %d", len(to.Exclude), maxExclude))
		}
		for _, id := range to.Exclude {
			if !validSubscriberID(id) {
				errs = append(errs, fmt.Sprintf("to: exclude %q: want letters, digits and _ : . - only, or an email address", id))
			}
		}
	default:
		errs = append(errs, fmt.Sprintf("to: type %q: want Event, Subscriber or Topic", to.Kind))
	}
	return errs
}

// validNovuKey reports whether s matches Novu's ^[a-zA-Z0-9_:.-]+$.
func validNovuKey(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validSubscriberID reports whether Novu accepts s as a subscriber id: a key
// (see [validNovuKey]) or an email-shaped string (^\S+@\S+\.\S+$).
func validSubscriberID(s string) bool {
	if validNovuKey(s) {
		return true
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" {
		return false
	}
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-1
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
