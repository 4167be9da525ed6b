package route

import (
	"fmt"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events"
)

// pattern is a compiled match: an event type, or subject-style wildcards.
type pattern struct {
	// key is the canonical form: a lone '*' is stored as '>' (every type).
	key    string
	tokens []string
	exact  bool
}

// compilePattern checks and compiles a rule's match.
func compilePattern(s string) (pattern, error) {
	switch {
	case s == "":
		return pattern{}, fmt.Errorf("match is empty: write an event type such as user.created, or a pattern such as organization.* or *")
	case s == "*" || s == ">":
		return pattern{key: ">", tokens: []string{">"}}, nil
	case len(s) > events.MaxEventTypeLen:
		return pattern{}, fmt.Errorf("match is %d bytes, more than %d", len(s), events.MaxEventTypeLen)
	}
	tokens := strings.Split(s, ".")
	exact := true
	for i, t := range tokens {
		switch t {
		case "*":
			exact = false
		case ">":
			if i != len(tokens)-1 {
				return pattern{}, fmt.Errorf("match %q: '>' may only be the last token", s)
			}
			exact = false
		default:
			if err := events.ValidateToken(t); err != nil {
				return pattern{}, fmt.Errorf("match %q: want dot-separated tokens of letters, digits, '-' and '_', or '*' and a final '>': %w", s, err)
			}
		}
	}
	return pattern{key: s, tokens: tokens, exact: exact}, nil
}

// matches reports whether the event type typ (valid subject tokens) matches p,
// without allocating.
func (p *pattern) matches(typ string) bool {
	rest, more := typ, true
	for _, pt := range p.tokens {
		if !more {
			return false
		}
		if pt == ">" {
			return true
		}
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if pt != "*" && pt != tok {
			return false
		}
	}
	return !more
}

// tokenRank orders token kinds by specificity: a literal beats '*', which beats '>'.
func tokenRank(t string) int {
	switch t {
	case ">":
		return 0
	case "*":
		return 1
	}
	return 2
}

// compareSpecificity sorts the more specific pattern first: tokens compared
// from the left, a literal beats '*', which beats '>'. Two different patterns
// that match the same event type always differ in kind at some token, so the
// most specific match is unique.
func compareSpecificity(a, b pattern) int {
	for i := 0; i < len(a.tokens) && i < len(b.tokens); i++ {
		ra, rb := tokenRank(a.tokens[i]), tokenRank(b.tokens[i])
		if ra != rb {
			return rb - ra
		}
	}
	if len(a.tokens) != len(b.tokens) {
		return len(b.tokens) - len(a.tokens)
	}
	return strings.Compare(a.key, b.key)
}
