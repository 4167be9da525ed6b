// Command receiver takes Clerk webhooks (Svix deliveries), verifies their
// signatures on the raw bytes, stores each one in JetStream stream CLERK on
// clerk.<type>, and answers 2xx only once the store acknowledged it.
//
// Configuration is read from the environment; see app.LoadConfig and the
// README. A configuration error prints one line and exits with status 2.
package main

import (
	"context"
	"os"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/app"
)

func main() {
	os.Exit(service.Main(app.ServiceName, app.LoadConfig,
		func(c app.Config) service.LogConfig { return c.Log },
		func(ctx context.Context, c app.Config, d service.Deps) error {
			return app.Run(ctx, c, app.Deps{Deps: d})
		}))
}
