// Command send is the local stand-in for the "Send Example" button of Clerk's
// webhook dashboard: it signs a realistic Clerk event the way Svix does and
// posts it to a receiver, then prints the answer.
//
//	go run ./deploy/send user.created
//	go run ./deploy/send email.created/magic_link_sign_in
//	go run ./deploy/send -file my-event.json
//	go run ./deploy/send -list
//
// With no flags it posts to devstack's receiver, signing with the secret
// devstack generated. The event is any name from -list: every type of Clerk's
// catalog, and variants named type/variant for the edge cases (an email for
// every template slug, a user.updated whose first address is not the primary,
// a session.revoked with a null user, an unknown event type...).
//
// Flags (and the environment variables that set their defaults):
//
//	-url              RECEIVER_URL                  receiver URL (http://127.0.0.1:8080/webhooks/clerk)
//	-secret           CLERK_WEBHOOK_SIGNING_SECRET  signing secret, whsec_...; else read from
//	                                                .devstack/webhook-secret (DEVSTACK_DIR), looked
//	                                                for from the current directory up to the
//	                                                repository root
//	-file                                           send this file's bytes instead of a sample
//	-id                                             svix-id to use, to show that a repeat is deduplicated
//	-n                                              send n copies, each with a fresh svix-id (or -id)
//	-webhook-headers                                sign with webhook-* header names instead of svix-*
//	-timeout                                        give up on an answer after this long (15s, as Svix)
//	-v                                              print the body sent
//	-list                                           list the sample names with a description
//
// For each copy it prints the svix-id and the receiver's status and first
// line of its answer. It exits 0 when every answer is 2xx, 1 when one is not
// or the receiver cannot be reached, and 2 on a usage or configuration error.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// Defaults and the environment the tool reads.
const (
	// DefaultURL is devstack's receiver endpoint.
	DefaultURL = "http://127.0.0.1:8080/webhooks/clerk"
	// DefaultTimeout is how long Svix waits for an answer.
	DefaultTimeout = 15 * time.Second

	urlEnv         = "RECEIVER_URL"
	secretEnv      = "CLERK_WEBHOOK_SIGNING_SECRET"
	devstackDirEnv = "DEVSTACK_DIR"
	devstackDir    = ".devstack"
	// secretFileName is the file devstack keeps its generated secret in
	// (stack.SecretFileName in deploy/stack).
	secretFileName = "webhook-secret"
	// maxAnswerBytes bounds the part of the receiver's answer printed.
	maxAnswerBytes = 300
	userAgent      = "clerknovu-send/1 (local stand-in for Svix)"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// options are the parsed command line.
type options struct {
	url, secret, file, id   string
	n                       int
	list, webhookHeaders, v bool
	timeout                 time.Duration
	event                   string
}

// usagef reports a mistake in the command line or configuration (exit 2).
func usagef(format string, args ...any) error { return fmt.Errorf(format, args...) }

// run is the whole command; main only supplies the process's streams and
// environment, so the tests drive it directly.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseArgs(args, stderr, getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "send: %v\n", err)
		return 2
	}
	if o.list {
		printList(stdout)
		return 0
	}
	name, body, err := loadBody(o)
	if err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return 2
	}
	secret, err := findSecret(o.secret, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return 2
	}
	if _, err := samples.Sign(secret, "msg_check", time.Now(), nil); err != nil {
		fmt.Fprintf(stderr, "send: signing secret: %v\n", err)
		return 2
	}
	if o.v {
		fmt.Fprintf(stdout, "%s\n", body)
	}
	client := &http.Client{Timeout: o.timeout}
	failed := 0
	for range o.n {
		id := o.id
		if id == "" {
			id = samples.NewSvixID()
		}
		if err := post(client, o, secret, name, id, body, stdout); err != nil {
			fmt.Fprintf(stderr, "send: %v\n", err)
			failed++
		}
	}
	if o.n > 1 {
		fmt.Fprintf(stdout, "%d sent, %d answered 2xx\n", o.n, o.n-failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// parseArgs reads flags placed before or after the event name.
func parseArgs(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	receiverURL := DefaultURL
	if v := strings.TrimSpace(getenv(urlEnv)); v != "" {
		receiverURL = v
	}
	fs.StringVar(&o.url, "url", receiverURL, "receiver URL ("+urlEnv+")")
	fs.StringVar(&o.secret, "secret", "", "signing secret, whsec_... (default $"+secretEnv+", else .devstack/"+secretFileName+")")
	fs.StringVar(&o.file, "file", "", "send this file's bytes instead of a sample")
	fs.StringVar(&o.id, "id", "", "svix-id to use (default: a fresh one per copy); repeat one to see it deduplicated")
	fs.IntVar(&o.n, "n", 1, "number of copies to send")
	fs.BoolVar(&o.list, "list", false, "list the sample names and exit")
	fs.BoolVar(&o.webhookHeaders, "webhook-headers", false, "use webhook-id/-timestamp/-signature header names")
	fs.BoolVar(&o.v, "v", false, "print the body sent")
	fs.DurationVar(&o.timeout, "timeout", DefaultTimeout, "how long to wait for an answer")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: send [flags] <event>   (event: a name from -list, e.g. user.created or email.created/magic_link_sign_in)\n       send [flags] -file body.json\n       send -list\n\nflags:\n")
		fs.PrintDefaults()
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, err
			}
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case o.list:
		return o, nil
	case len(positional) > 1:
		return o, usagef("one event at a time, got %q", positional)
	case len(positional) == 1 && o.file != "":
		return o, usagef("give an event name or -file, not both")
	case len(positional) == 0 && o.file == "":
		return o, usagef("which event? give a name such as user.created (see -list), or -file body.json")
	case o.n < 1:
		return o, usagef("-n: want at least 1, got %d", o.n)
	case o.timeout <= 0:
		return o, usagef("-timeout: want a positive duration, got %v", o.timeout)
	case strings.TrimSpace(o.url) == "":
		return o, usagef("-url: empty")
	case o.id != "" && strings.ContainsAny(o.id, " \t\r\n"):
		return o, usagef("-id: %q holds white space", o.id)
	}
	if len(positional) == 1 {
		o.event = positional[0]
	}
	return o, nil
}

// printList writes every sample name with its description.
func printList(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range samples.All() {
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Description)
	}
	tw.Flush()
}

// loadBody returns the name to show and the bytes to send.
func loadBody(o options) (string, []byte, error) {
	if o.file != "" {
		body, err := os.ReadFile(o.file)
		if err != nil {
			return "", nil, usagef("-file: %v", err)
		}
		// The file is sent as is, even when it is not a valid event: that is how
		// to see the receiver's answer to a bad body.
		name := filepath.Base(o.file)
		if ev, err := events.ParseEvent(body); err == nil {
			name = ev.Type + " (" + name + ")"
		}
		return name, body, nil
	}
	s, ok := samples.Get(o.event)
	if !ok {
		return "", nil, usagef("no sample called %q: run send -list to see the names", o.event)
	}
	return s.Name, s.Body, nil
}

// findSecret returns the signing secret: the flag, else the environment, else
// devstack's secret file.
func findSecret(flagValue string, getenv func(string) string) (string, error) {
	if s := strings.TrimSpace(flagValue); s != "" {
		return s, nil
	}
	if s := strings.TrimSpace(getenv(secretEnv)); s != "" {
		return s, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", usagef("no signing secret: pass -secret or set %s", secretEnv)
	}
	path, ok := findSecretFile(wd, getenv(devstackDirEnv))
	if !ok {
		return "", usagef("no signing secret: pass -secret, set %s, or start devstack (go run ./deploy/devstack), which writes %s",
			secretEnv, filepath.Join(devstackDir, secretFileName))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("read signing secret: %v", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", usagef("%s is empty: delete it and restart devstack", path)
	}
	return s, nil
}

// findSecretFile looks for <dir>/webhook-secret, dir being DEVSTACK_DIR or
// .devstack: an absolute dir directly; a relative one in start and each parent
// of start, up to and including the first directory that holds go.work or
// .git (the repository root, where devstack is run from).
func findSecretFile(start, dir string) (string, bool) {
	if strings.TrimSpace(dir) == "" {
		dir = devstackDir
	}
	if filepath.IsAbs(dir) {
		p := filepath.Join(dir, secretFileName)
		return p, isFile(p)
	}
	for d := filepath.Clean(start); ; {
		if p := filepath.Join(d, dir, secretFileName); isFile(p) {
			return p, true
		}
		if exists(filepath.Join(d, "go.work")) || exists(filepath.Join(d, ".git")) {
			return "", false
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// post signs body with a fresh timestamp, posts it, and prints the answer. It
// returns an error when the receiver cannot be reached or does not answer 2xx.
func post(client *http.Client, o options, secret, name, id string, body []byte, stdout io.Writer) error {
	headers, err := samples.Sign(secret, id, time.Now(), body)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequest(http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("-url %q: %w", o.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	for k, v := range headers {
		if o.webhookHeaders {
			k = "webhook-" + strings.TrimPrefix(k, "svix-")
		}
		req.Header.Set(k, v)
	}
	fmt.Fprintf(stdout, "%s  svix-id %s  %d bytes → %s\n", name, id, len(body), o.url)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w (is the receiver running? go run ./deploy/devstack)", o.url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	line := firstLine(resp.Body)
	fmt.Fprintf(stdout, "%s  %s\n", resp.Status, line)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s for svix-id %s", o.url, resp.Status, id)
	}
	return nil
}

// unwrapURLError drops the "Post URL:" prefix net/http adds, which the caller
// already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// firstLine returns the first non-empty line of r, shortened to
// maxAnswerBytes, or "(empty answer)".
func firstLine(r io.Reader) string {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if len(line) > maxAnswerBytes {
			cut := maxAnswerBytes
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			line = line[:cut] + "…"
		}
		return line
	}
	return "(empty answer)"
}
