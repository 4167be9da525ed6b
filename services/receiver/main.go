// Command receiver takes Clerk webhooks (Svix deliveries), verifies their
// signatures on the raw bytes, stores each one in JetStream stream CLERK on
// clerk.<type>, and answers 2xx only once the store acknowledged it.
//
// Configuration is read from the environment; see app.LoadConfig and the
// README. A configuration error prints one line and exits with status 2.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/service"
	"github.com/clerknovu/pipeline/services/receiver/app"
)

const name = "receiver"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, service.OneLine(err))
		if errors.As(err, new(configError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// configError marks the errors main exits 2 for.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// run loads the configuration, sets up logging and tracing, runs the
// receiver until ctx is done, and flushes the last spans.
func run(ctx context.Context) (err error) {
	cfg, err := app.LoadConfig(os.Getenv)
	if err != nil {
		return configError{err}
	}
	logger := service.NewLogger(os.Stdout, cfg.Log)
	tel, err := service.SetupTelemetry(ctx, os.Getenv, name)
	if err != nil {
		return configError{err}
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(shutdownCtx))
	}()
	return app.Run(ctx, cfg, app.Deps{Logger: logger, Telemetry: tel})
}
