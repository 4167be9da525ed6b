// Command clerknovu is the operator's CLI for the Clerk → Novu pipeline:
// provisioning the JetStream resources, status, dead letters (list, show,
// redrive, purge), replaying stored Clerk events through the router, and
// checking, testing and storing routing rules with the router's own code.
//
// It reads the same NATS_* variables as the services (NATS_URL, NATS_CREDS,
// ...), STREAM_* and the consumer settings for provisioning, and
// ROUTES_KV_BUCKET; --server and --creds override the first two. Every read
// command takes --json (one object per line). Exit status: 0 success, 1
// failure, 2 bad usage (including an invalid rules document for routes check).
//
// Built on spf13/cobra: nested commands with their own flags, help and
// examples per command, and shell completion come with it, the same layout
// as nats, kubectl and helm, rather than a hand-written flag.FlagSet router.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &cli{
		getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		terminal: isTerminal(os.Stdin) && isTerminal(os.Stderr), now: time.Now,
	})
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// cli is what the commands take from the process: injected so tests run
// them in-process.
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	// terminal is true when a person can answer a prompt.
	terminal bool
	now      func() time.Time
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, c *cli) int {
	root := newRoot(c)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(c.stderr, "clerknovu:", err)
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailure
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
