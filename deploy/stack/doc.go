// Package stack runs the whole pipeline in one process: an embedded JetStream
// server with the streams provisioned, and the receiver, router and novu-sink
// started through their exported app packages, each with its own NATS
// connection, HTTP listener, metrics registry and telemetry, exactly as their
// own main would run them.
//
// devstack (go run ./deploy/devstack) is a thin main around [Start]; the
// full-stack test and the benchmark tool reuse it. Settings reach the services
// through their own app.LoadConfig, from an environment layered as
// [Options.Env] over the real environment over devstack defaults (see
// [Layered]), so anything a service reads from the environment can be set the
// usual way.
package stack
