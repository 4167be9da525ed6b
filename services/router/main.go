// Command router reads Clerk events from JetStream stream CLERK and publishes
// one Novu trigger command per matching workflow on novu.trigger.<workflowId>.
// See README.md for its configuration and docs/routing.md for the rules.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/service"
	"github.com/clerknovu/pipeline/services/router/app"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 after a clean shutdown, 1 when the router
// fails, 2 when the configuration is wrong.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := app.LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, app.ServiceName+": "+service.OneLine(err))
		return 2
	}
	log := service.NewLogger(os.Stdout, cfg.Log)
	tel, err := service.SetupTelemetry(ctx, os.Getenv, app.ServiceName)
	if err != nil {
		fmt.Fprintln(os.Stderr, app.ServiceName+": "+service.OneLine(err))
		return 2
	}
	err = app.Run(ctx, cfg, app.Deps{Logger: log, Telemetry: tel})
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := tel.Shutdown(sctx); serr != nil {
		log.Warn("telemetry shutdown", "err", serr.Error())
	}
	if err != nil {
		log.Error("router stopped", "err", service.OneLine(err))
		return 1
	}
	return 0
}
