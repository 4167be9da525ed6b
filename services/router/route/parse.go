package route

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// FormatVersion is the only version of the rules document format.
const FormatVersion = 1

// document is the YAML rules document.
type document struct {
	Version int       `yaml:"version"`
	Mode    string    `yaml:"mode"`
	Rules   []ruleDoc `yaml:"rules"`
	Sync    *syncDoc  `yaml:"sync"`
}

// syncDoc is the document's sync: as written.
type syncDoc struct {
	Subscribers        bool   `yaml:"subscribers"`
	OrganizationTopics string `yaml:"organizationTopics"`
}

// ruleDoc is one rule as written.
type ruleDoc struct {
	Match     string            `yaml:"match"`
	Workflows []string          `yaml:"workflows"`
	Slugs     map[string]string `yaml:"slugs"`
	Fallback  string            `yaml:"fallback"`
	Drop      bool              `yaml:"drop"`
	To        *recipientDoc     `yaml:"to"`
	When      string            `yaml:"when"`
	Payload   map[string]string `yaml:"payload"`
}

// recipientDoc is a rule's to: as written.
type recipientDoc struct {
	Type         string   `yaml:"type"`
	SubscriberID string   `yaml:"subscriberId"`
	TopicKey     string   `yaml:"topicKey"`
	Exclude      []string `yaml:"exclude"`
}

// Parse decodes and validates a YAML (or JSON) rules document. source names
// it in error messages ("file routes.yaml", "kv ROUTES/rules rev 4"). Unknown
// fields are errors, so a typo never silently drops a rule. Errors wrap
// [ErrInvalidRules] and fit on one line.
func Parse(source string, data []byte) (Layer, error) {
	fail := func(format string, args ...any) (Layer, error) {
		return Layer{}, fmt.Errorf("%w: %s: %s", ErrInvalidRules, source, fmt.Sprintf(format, args...))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc document
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail("the document is empty: write at least \"rules: []\"")
		}
		return fail("%s", yamlReason(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fail("holds more than one YAML document: keep one, without '---' separators")
	}
	if doc.Version != 0 && doc.Version != FormatVersion {
		return fail("version %d: the only version is %d", doc.Version, FormatVersion)
	}
	if doc.Rules == nil && doc.Sync == nil && !hasKey(data, "rules") {
		return fail("no rules: key; write \"rules: []\" to route nothing")
	}
	lines := ruleLines(data)
	l := Layer{Source: source, Mode: Mode(doc.Mode), Rules: make([]Rule, len(doc.Rules))}
	if l.Mode == "" {
		l.Mode = ModeExtend
	}
	if doc.Sync != nil {
		l.Sync = &Sync{Subscribers: doc.Sync.Subscribers, OrganizationTopics: doc.Sync.OrganizationTopics}
	}
	for i, rd := range doc.Rules {
		r := Rule{
			Match:     rd.Match,
			Workflows: rd.Workflows,
			Slugs:     rd.Slugs,
			Fallback:  rd.Fallback,
			Drop:      rd.Drop,
			When:      rd.When,
			Payload:   rd.Payload,
			Source:    source,
			Index:     i + 1,
		}
		if i < len(lines) {
			r.Line = lines[i]
		}
		if rd.To != nil {
			r.To = Recipient{
				Kind:         RecipientKind(rd.To.Type),
				SubscriberID: rd.To.SubscriberID,
				TopicKey:     rd.To.TopicKey,
				Exclude:      rd.To.Exclude,
			}
			if r.To.Kind == "" { // infer the kind from the one id given
				switch {
				case r.To.TopicKey != "" && r.To.SubscriberID == "":
					r.To.Kind = RecipientTopic
				case r.To.SubscriberID != "" && r.To.TopicKey == "":
					r.To.Kind = RecipientSubscriber
				}
			}
		}
		l.Rules[i] = r
	}
	if err := l.Validate(); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// hasKey reports whether the top-level mapping of data has key.
func hasKey(data []byte, key string) bool {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return false
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// ruleLines returns the line of each rule of the document's rules sequence.
func ruleLines(data []byte) []int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "rules" {
			continue
		}
		var lines []int
		for _, n := range m.Content[i+1].Content {
			lines = append(lines, n.Line)
		}
		return lines
	}
	return nil
}

// yamlFieldRE finds yaml.v3's "field x not found in type route.y" messages.
var yamlFieldRE = regexp.MustCompile(`field (\S+) not found in type route\.(\w+)`)

// yamlTypeRE finds yaml.v3's Go type names in "cannot unmarshal" messages.
var yamlTypeRE = regexp.MustCompile(`into route\.(\w+)`)

// yamlReason turns a yaml.v3 error into one line that speaks of the format,
// not of Go types.
func yamlReason(err error) string {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		m = yamlFieldRE.ReplaceAllStringFunc(m, func(s string) string {
			sub := yamlFieldRE.FindStringSubmatch(s)
			where, known := knownFields(sub[2])
			return fmt.Sprintf("unknown field %q %s (known: %s)", sub[1], where, known)
		})
		m = yamlTypeRE.ReplaceAllStringFunc(m, func(s string) string {
			where, _ := knownFields(yamlTypeRE.FindStringSubmatch(s)[1])
			return "into a value " + where
		})
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

// knownFields describes a document type for yamlReason.
func knownFields(goType string) (where, known string) {
	switch goType {
	case "document":
		return "at the top level", "version, mode, rules, sync"
	case "syncDoc":
		return "in sync:", "subscribers, organizationTopics"
	case "ruleDoc":
		return "in a rule", "match, workflows, slugs, fallback, drop, to, when, payload"
	case "recipientDoc":
		return "in to:", "type, subscriberId, topicKey, exclude"
	}
	return "", ""
}
