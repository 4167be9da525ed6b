package service

import (
	"context"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/consume"
)

// DefaultShutdownTimeout is SHUTDOWN_TIMEOUT's default: the whole shutdown
// of a service (consumers drained, NATS drained, HTTP stopped) fits well
// under Kubernetes' default 30 s termination grace period. It is the consume
// runtime's stop budget too.
const DefaultShutdownTimeout = consume.DefaultShutdownTimeout

// ShutdownTimeout reads SHUTDOWN_TIMEOUT, the one budget for a service's
// whole shutdown (default [DefaultShutdownTimeout]).
func (e *Env) ShutdownTimeout() time.Duration {
	return e.Duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout)
}

// ShutdownContext returns the context every shutdown step shares: ctx's
// values without its cancellation (ctx is the signal context, already
// done), and one deadline timeout from now.
func ShutdownContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// Remaining is the time left before ctx's deadline, at least a millisecond
// (for steps that take a duration, such as [Drain]); a minute without one.
func Remaining(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Minute
	}
	return max(time.Until(d), time.Millisecond)
}
