package service

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads typed settings from an environment lookup function (os.Getenv in
// main, a map in tests) and remembers the first error of each setting, so a
// loadConfig reads like a list and fails with every problem at once.
type Env struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	errs     []error
}

// NewEnv returns an [Env] over getenv. A nil getenv reads nothing: a
// service's Config.Validate uses NewEnv(nil) to check a Config built in code
// with the same validate(*Env) as its LoadConfig, so both report the same
// one-line problems, each naming the variable and the fix.
func NewEnv(getenv func(string) string) *Env {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Env{getenv: getenv, readFile: os.ReadFile}
}

// Err returns every problem found so far, one per line, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Fail records a problem found by the caller's own validation.
func (e *Env) Fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Replaced refuses old, a variable an earlier release read, when it is
// set: ignoring it would run the service on a default the operator did not
// choose. why names what replaced it.
func (e *Env) Replaced(old, why string) {
	if e.Lookup(old) != "" {
		e.Fail(old, "replaced by %s", why)
	}
}

// Lookup returns the trimmed value of name, or "".
func (e *Env) Lookup(name string) string { return strings.TrimSpace(e.getenv(name)) }

// String returns name's value, or def when unset.
func (e *Env) String(name, def string) string {
	if v := e.Lookup(name); v != "" {
		return v
	}
	return def
}

// Secret returns the value of name or the content of the file named by
// name_FILE (trailing newline removed). Setting both is an error. The value is
// never part of an error message.
func (e *Env) Secret(name string) string {
	v, file := e.getenv(name), e.Lookup(name+"_FILE")
	switch {
	case v != "" && file != "":
		e.Fail(name, "set either %s or %s_FILE, not both", name, name)
		return ""
	case file != "":
		b, err := e.readFile(file)
		if err != nil {
			e.Fail(name+"_FILE", "cannot read %q: %v", file, unwrapPathError(err))
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	}
	return v
}

// Required records an error when value is empty.
func (e *Env) Required(name, value, hint string) {
	if value == "" {
		e.Fail(name, "required (%s)", hint)
	}
}

// Bool parses true/false/1/0/yes/no/on/off.
func (e *Env) Bool(name string, def bool) bool {
	v := strings.ToLower(e.Lookup(name))
	switch v {
	case "":
		return def
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	e.Fail(name, "want true or false, got %q", e.Lookup(name))
	return def
}

// Int parses a base-10 integer that must be at least minimum.
func (e *Env) Int(name string, def, minimum int) int {
	v := e.Lookup(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Fail(name, "want a whole number, got %q", v)
		return def
	}
	if n < minimum {
		e.Fail(name, "want at least %d, got %d", minimum, n)
		return def
	}
	return n
}

// Float parses a decimal number that must be at least minimum.
func (e *Env) Float(name string, def, minimum float64) float64 {
	v := e.Lookup(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		e.Fail(name, "want a number, got %q", v)
		return def
	}
	if f < minimum {
		e.Fail(name, "want at least %g, got %g", minimum, f)
		return def
	}
	return f
}

// Duration parses a Go duration ("1.5s", "36h") that must be positive.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.Lookup(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.Fail(name, "want a duration such as 30s, 5m or 36h, got %q", v)
		return def
	}
	if d <= 0 {
		e.Fail(name, "want a positive duration, got %q", v)
		return def
	}
	return d
}

// File returns name's value and records an error when it names no readable file.
func (e *Env) File(name string) string {
	v := e.Lookup(name)
	if v == "" {
		return ""
	}
	if _, err := os.Stat(v); err != nil {
		e.Fail(name, "cannot read %q: %v", v, unwrapPathError(err))
	}
	return v
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// OneLine joins a multi-error into one line, for the message a service prints
// when it refuses to start.
func OneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
