module github.com/clerknovu/pipeline/services/novu-sink

go 1.26.0

require github.com/clerknovu/pipeline/pkg/events v0.0.0

// The workspace (go.work) resolves these; the replace lets each module also
// build and tidy on its own (GOWORK=off, Docker builds from the repo root).
replace github.com/clerknovu/pipeline/pkg/events => ../../pkg/events
