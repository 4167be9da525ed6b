package service

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error (LOG_LEVEL, default info).
	Level slog.Level
	// Format is json or text (LOG_FORMAT, default json).
	Format string
}

// Log reads LOG_LEVEL and LOG_FORMAT.
func (e *Env) Log() LogConfig {
	c := LogConfig{Format: strings.ToLower(e.String("LOG_FORMAT", "json"))}
	if c.Format != "json" && c.Format != "text" {
		e.Fail("LOG_FORMAT", "want json or text, got %q", c.Format)
	}
	if v := e.Lookup("LOG_LEVEL"); v != "" {
		if err := c.Level.UnmarshalText([]byte(v)); err != nil {
			e.Fail("LOG_LEVEL", "want debug, info, warn or error, got %q", v)
		}
	}
	return c
}

// NewLogger returns a logger writing to w in c's format. Records logged with a
// context that carries a span get trace_id and span_id attributes.
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	var h slog.Handler
	if c.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(traceHandler{h})
}

// traceHandler adds the trace and span ids of the record's context.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
