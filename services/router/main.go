// Command router reads Clerk events from JetStream stream CLERK and publishes
// one Novu trigger command per matching workflow on novu.trigger.<workflowId>.
// See README.md for its configuration and docs/routing.md for the rules.
// A configuration error prints one line and exits with status 2.
package main

import (
	"os"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/router/app"
)

func main() {
	os.Exit(service.Main(app.ServiceName, app.LoadConfig,
		func(c app.Config) service.LogConfig { return c.Log }, app.Run))
}
