package service

import (
	"context"
	"testing"
	"time"
)

func TestShutdownTimeout(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{name: "default, under Kubernetes' 30 s grace", env: nil, want: 20 * time.Second},
		{name: "set", env: map[string]string{"SHUTDOWN_TIMEOUT": "8s"}, want: 8 * time.Second},
		{name: "not a duration", env: map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, want: DefaultShutdownTimeout, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(func(k string) string { return tt.env[k] })
			if got := e.ShutdownTimeout(); got != tt.want {
				t.Errorf("ShutdownTimeout() = %v, want %v", got, tt.want)
			}
			if (e.Err() != nil) != tt.wantErr {
				t.Errorf("Err() = %v, want error %v", e.Err(), tt.wantErr)
			}
		})
	}
}

func TestShutdownContextOutlivesTheSignal(t *testing.T) {
	sig, cancel := context.WithCancel(t.Context())
	cancel() // the signal arrived
	ctx, stop := ShutdownContext(sig, time.Hour)
	defer stop()
	if ctx.Err() != nil {
		t.Fatal("the shutdown context is done with the signal context, want it to run to its deadline")
	}
	if r := Remaining(ctx); r <= 59*time.Minute || r > time.Hour {
		t.Errorf("Remaining = %v, want about an hour", r)
	}
	if r := Remaining(context.Background()); r != time.Minute {
		t.Errorf("Remaining without a deadline = %v, want a minute", r)
	}
}
