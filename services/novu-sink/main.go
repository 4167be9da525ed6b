// Command novu-sink consumes trigger commands from the NATS JetStream stream
// NOVU and calls Novu's trigger API over plain HTTP, behind a circuit breaker
// and a rate limit, with retries, bulk calls and a dead-letter queue. See
// README.md for the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/clerknovu/pipeline/pkg/events/service"
	"github.com/clerknovu/pipeline/services/novu-sink/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	var cfgErr configError
	switch {
	case errors.As(err, &cfgErr):
		fmt.Fprintf(os.Stderr, "%s: %s\n", app.ServiceName, service.OneLine(cfgErr.err))
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: %s\n", app.ServiceName, service.OneLine(err))
		os.Exit(1)
	}
}

// configError marks an error in the configuration, which exits with status 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }

func run(ctx context.Context) (err error) {
	cfg, err := app.LoadConfig(os.Getenv)
	if err != nil {
		return configError{err}
	}
	log := service.NewLogger(os.Stdout, cfg.Log)
	tel, err := service.SetupTelemetry(ctx, os.Getenv, app.ServiceName)
	if err != nil {
		return configError{err}
	}
	defer func() {
		// Flush the spans of the drained messages; the signal ctx is done by now.
		err = errors.Join(err, tel.Shutdown(context.WithoutCancel(ctx)))
	}()
	return app.Run(ctx, cfg, app.Deps{Logger: log, Telemetry: tel})
}
