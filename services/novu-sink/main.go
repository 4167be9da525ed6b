// Command novu-sink consumes trigger commands from the NATS JetStream stream
// NOVU and calls Novu's trigger API over plain HTTP, behind a circuit breaker
// and a rate limit, with retries, bulk calls and a dead-letter queue. See
// README.md for the configuration. A configuration error prints one line and
// exits with status 2.
package main

import (
	"context"
	"os"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/app"
)

func main() {
	os.Exit(service.Main(app.ServiceName, app.LoadConfig,
		func(c app.Config) service.LogConfig { return c.Log },
		func(ctx context.Context, c app.Config, d service.Deps) error {
			return app.Run(ctx, c, app.Deps{Deps: d})
		}))
}
