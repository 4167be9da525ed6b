module github.com/clerknovu/pipeline/deploy

go 1.26.0

require (
	github.com/clerknovu/pipeline/pkg/events v0.0.0
	github.com/clerknovu/pipeline/services/novu-sink v0.0.0
	github.com/clerknovu/pipeline/services/receiver v0.0.0
	github.com/clerknovu/pipeline/services/router v0.0.0
)

// The workspace (go.work) resolves these; the replaces let the module also
// build and tidy on its own.
replace (
	github.com/clerknovu/pipeline/pkg/events => ../pkg/events
	github.com/clerknovu/pipeline/services/novu-sink => ../services/novu-sink
	github.com/clerknovu/pipeline/services/receiver => ../services/receiver
	github.com/clerknovu/pipeline/services/router => ../services/router
)
