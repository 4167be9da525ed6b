package stack

import (
	"context"
	"errors"

	novusink "github.com/clerknovu/pipeline/services/novu-sink/app"
	receiver "github.com/clerknovu/pipeline/services/receiver/app"
	router "github.com/clerknovu/pipeline/services/router/app"
)

// components loads the three services' configurations from getenv, in the
// order they stop: receiver, router, sink. Its error holds a [ConfigError]
// for each service whose configuration is wrong.
func (st *Stack) components(o Options, getenv func(string) string) ([]component, error) {
	var errs []error
	envOf := func(name string) func(string) string { return Layered(o.ServiceEnv[name], getenv, nil) }
	rc, err := receiver.LoadConfig(envOf("receiver"))
	if err != nil {
		errs = append(errs, &ConfigError{Service: "receiver", Err: err})
	}
	tc, err := router.LoadConfig(envOf("router"))
	if err != nil {
		errs = append(errs, &ConfigError{Service: "router", Err: err})
	}
	sc, err := novusink.LoadConfig(envOf("novu-sink"))
	if err != nil {
		errs = append(errs, &ConfigError{Service: "novu-sink", Err: err})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	st.webhookPath = rc.Path
	st.describeSink(sc)
	st.RoutesBucket = tc.RoutesKVBucket
	return []component{
		{name: "receiver", addr: o.ReceiverAddr, opsAddr: o.ReceiverOpsAddr, run: func(ctx context.Context, d deps) error {
			return receiver.Run(ctx, rc, receiver.Deps{Deps: d.Deps, OpsListener: d.opsListener})
		}},
		{name: "router", addr: o.RouterAddr, run: func(ctx context.Context, d deps) error {
			return router.Run(ctx, tc, d.Deps)
		}},
		{name: "novu-sink", addr: o.SinkAddr, run: func(ctx context.Context, d deps) error {
			return novusink.Run(ctx, sc, novusink.Deps{Deps: d.Deps})
		}},
	}, nil
}

// describeSink records where the sink sends triggers.
func (st *Stack) describeSink(c novusink.Config) {
	st.DryRun = c.DryRun
	if c.DryRun {
		st.Novu = "dry-run (NOVU_DRY_RUN=true): every trigger is logged, nothing is sent"
		return
	}
	st.Novu = c.APIURL
}

// ConfigError is a setting a service refuses: fix the environment.
type ConfigError struct {
	// Service is receiver, router, novu-sink, or devstack for the stack's own settings.
	Service string
	// Err lists the problems, one per line, each naming the variable to fix.
	Err error
}

// Error returns "<service>: <problems>".
func (e *ConfigError) Error() string { return e.Service + ": " + e.Err.Error() }

// Unwrap returns the problems.
func (e *ConfigError) Unwrap() error { return e.Err }
