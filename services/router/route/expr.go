package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Bounds on the expressions of a rule, so that a rules document cannot make
// the router slow: each expression is at most maxExprLen bytes and
// maxExprNodes syntax nodes, a rule shapes at most maxPayloadKeys keys, and
// expr's VM stops an evaluation that allocates more than its memory budget
// (1e6 units, expr's default). Expressions have no loops beyond the
// collection builtins over the event's own (bounded) data.
const (
	maxExprLen     = 2000
	maxExprNodes   = 500
	maxPayloadKeys = 64
)

// Names an expression can read. data is the event's data object, decoded
// with every JSON number kept exact (an integer as int, beyond 2^63 as a
// json.Number; a fraction as float64).
const (
	exprData      = "data"
	exprType      = "type"
	exprTimestamp = "timestamp"
)

// exprEnv declares the names and their types for the type check at load.
var exprEnv = map[string]any{
	exprData:      map[string]any{},
	exprType:      "",
	exprTimestamp: int64(0),
}

// ErrExpression reports a rule's when or payload expression that failed on
// an event at run time (a comparison of a string with a number, an index out
// of range). The message names the rule's position and the error. It also
// matches [events.ErrInvalidEvent]: the event as it is can never be routed by
// this rule, so it is dead-lettered instead of retried.
var ErrExpression = errors.New("rule expression failed")

// exprError is a run-time expression failure: it matches both
// [ErrExpression] and [events.ErrInvalidEvent].
type exprError struct{ msg string }

func (e *exprError) Error() string   { return e.msg }
func (e *exprError) Unwrap() []error { return []error{ErrExpression, events.ErrInvalidEvent} }

// program is one compiled expression with the data paths it reads.
type program struct {
	src   string
	prog  *vm.Program
	paths [][]any // data.a.b[0] is {"a", "b", 0}; one absent or null in the event makes the expression "missing"
}

// payloadField is one compiled key of a rule's payload.
type payloadField struct {
	key string
	program
}

// compileExpr compiles src for a rule; asBool makes it a condition.
func compileExpr(src string, asBool bool) (program, error) {
	if strings.TrimSpace(src) == "" {
		return program{}, errors.New("is empty")
	}
	if len(src) > maxExprLen {
		return program{}, fmt.Errorf("is %d bytes, at most %d", len(src), maxExprLen)
	}
	opts := []expr.Option{
		expr.Env(exprEnv),
		expr.MaxNodes(maxExprNodes),
		expr.DisableBuiltin("now"), // the same event must always give the same answer
		expr.Patch(optionalMembers{}),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return program{}, errors.New(exprReason(err))
	}
	prog := program{src: src, prog: p}
	var all [][]any
	collectPaths(p.Node(), &all)
	exempt := exemptPaths(p.Node())
	for _, path := range all {
		if !slices.ContainsFunc(exempt, func(q []any) bool { return slices.Equal(path, q) }) {
			prog.paths = append(prog.paths, path)
		}
	}
	return prog, nil
}

// optionalMembers makes every member access optional, as if written a?.b
// (an optional access in expr sits in a chain node), so that a field
// missing inside a collection builtin (any(data.email_addresses,
// .verification.status == "verified")) reads as nil instead of failing.
type optionalMembers struct{}

func (optionalMembers) Visit(node *ast.Node) {
	if m, ok := (*node).(*ast.MemberNode); ok && !m.Method {
		m.Optional = true
		ast.Patch(node, &ast.ChainNode{Node: m})
	}
}

// collectPaths appends every data path with constant steps that node reads.
func collectPaths(node ast.Node, paths *[][]any) {
	ast.Walk(&node, pathCollector{paths})
}

type pathCollector struct{ paths *[][]any }

func (c pathCollector) Visit(node *ast.Node) {
	if m, ok := (*node).(*ast.MemberNode); ok {
		if p, ok := dataPath(m); ok && len(p) > 0 && !slices.ContainsFunc(*c.paths, func(q []any) bool { return slices.Equal(p, q) }) {
			*c.paths = append(*c.paths, p)
		}
	}
}

// dataPath returns the steps of data.a.b[0], or false when m is not such a path.
func dataPath(m *ast.MemberNode) ([]any, bool) {
	var steps []any
	var n ast.Node = m
	for {
		switch v := n.(type) {
		case *ast.MemberNode:
			switch p := v.Property.(type) {
			case *ast.StringNode:
				steps = append(steps, p.Value)
			case *ast.IntegerNode:
				steps = append(steps, p.Value)
			default:
				return nil, false
			}
			n = v.Node
		case *ast.ChainNode:
			n = v.Node
		case *ast.IdentifierNode:
			if v.Value != exprData {
				return nil, false
			}
			slices.Reverse(steps)
			return steps, true
		default:
			return nil, false
		}
	}
}

// exemptPaths returns the data paths read on the left of ??, which handles a missing value itself.
func exemptPaths(node ast.Node) [][]any {
	var exempt [][]any
	ast.Walk(&node, coalesceVisitor{&exempt})
	return exempt
}

type coalesceVisitor struct{ exempt *[][]any }

func (c coalesceVisitor) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BinaryNode); ok && b.Operator == "??" {
		collectPaths(b.Left, c.exempt)
	}
}

// exprReason turns an expr error into one line: the message and its column.
func exprReason(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := strings.Join(strings.Fields(fe.Message), " ")
		if fe.Column > 0 || fe.Line > 1 {
			if fe.Line > 1 {
				return fmt.Sprintf("%s (line %d, column %d)", msg, fe.Line, fe.Column+1)
			}
			return fmt.Sprintf("%s (column %d)", msg, fe.Column+1)
		}
		return msg
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// exprInput is an event as expressions see it, decoded once per event.
type exprInput struct {
	env  map[string]any
	data any
}

// newExprInput decodes ev's data with every number kept exact.
func newExprInput(ev events.Event) (*exprInput, error) {
	in := &exprInput{}
	if d := bytes.TrimSpace(ev.Data); len(d) > 0 {
		dec := json.NewDecoder(bytes.NewReader(d))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %s data: %s", events.ErrInvalidEvent, ev.Type, decodeReason(err))
		}
		in.data = exactNumbers(v)
	}
	data, _ := in.data.(map[string]any) // not an object: every data path is missing
	in.env = map[string]any{exprData: data, exprType: ev.Type, exprTimestamp: ev.Timestamp}
	return in, nil
}

// exactNumbers replaces each json.Number of v by an int when it is an
// integer that fits, a float64 when it has a fraction or an exponent, and
// leaves it a json.Number (encoded back digit for digit) otherwise.
func exactNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = exactNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = exactNumbers(e)
		}
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return int(i)
			}
			return t
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
		return t
	}
	return v
}

// missing reports whether a path p reads is absent or null in the event.
func (in *exprInput) missing(p *program) bool {
	for _, path := range p.paths {
		if !present(in.data, path) {
			return true
		}
	}
	return false
}

// present reports whether path leads to a non-null value in v.
func present(v any, path []any) bool {
	for _, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if v, ok = m[s]; !ok {
				return false
			}
		case int:
			a, ok := v.([]any)
			if !ok {
				return false
			}
			if s < 0 {
				s += len(a)
			}
			if s < 0 || s >= len(a) {
				return false
			}
			v = a[s]
		}
		if v == nil {
			return false
		}
	}
	return true
}

// run evaluates p on in.
func (in *exprInput) run(p *program) (any, error) {
	out, err := expr.Run(p.prog, in.env)
	if err != nil {
		return nil, errors.New(exprReason(err))
	}
	return out, nil
}

// when evaluates a rule's condition: false when a field it reads is missing.
func (in *exprInput) when(r *Rule) (bool, error) {
	if r.cond == nil {
		return true, nil
	}
	if in.missing(r.cond) {
		return false, nil
	}
	out, err := in.run(r.cond)
	if err != nil {
		return false, &exprError{msg: fmt.Sprintf("%v: %s: when %q: %s", ErrExpression, r.Position(), r.cond.src, err)}
	}
	b, ok := out.(bool)
	if !ok { // nil: a value the path check could not see (inside a builtin)
		return false, nil
	}
	return b, nil
}

// payload evaluates a rule's payload: a JSON object with one key per payload
// entry, a key whose expression reads a missing field (or gives null) left
// out. Strings keep their Unicode, integers their digits; HTML is not escaped.
func (in *exprInput) payload(r *Rule) (json.RawMessage, error) {
	obj := make(map[string]any, len(r.shape))
	for i := range r.shape {
		f := &r.shape[i]
		if in.missing(&f.program) {
			continue
		}
		out, err := in.run(&f.program)
		if err != nil {
			return nil, &exprError{msg: fmt.Sprintf("%v: %s: payload %s %q: %s", ErrExpression, r.Position(), f.key, f.src, err)}
		}
		if out != nil {
			obj[f.key] = out
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, &exprError{msg: fmt.Sprintf("%v: %s: payload: %s", ErrExpression, r.Position(), err)}
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// compileRule compiles r's when and payload; it returns one message per
// problem, each naming the expression.
func (r *Rule) compile() []string {
	var errs []string
	r.cond, r.shape = nil, nil
	if r.When != "" {
		p, err := compileExpr(r.When, true)
		if err != nil {
			errs = append(errs, fmt.Sprintf("when %q: %v", r.When, err))
		} else {
			r.cond = &p
		}
	}
	if len(r.Payload) > maxPayloadKeys {
		errs = append(errs, fmt.Sprintf("payload has %d keys, at most %d", len(r.Payload), maxPayloadKeys))
	}
	for _, k := range sortedKeys(r.Payload) {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, "payload has an empty key")
			continue
		}
		p, err := compileExpr(r.Payload[k], false)
		if err != nil {
			errs = append(errs, fmt.Sprintf("payload %s %q: %v", k, r.Payload[k], err))
			continue
		}
		r.shape = append(r.shape, payloadField{key: k, program: p})
	}
	return errs
}
