package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/cmd/clerknovu/ops"
	"github.com/nats-io/nats.go/jetstream"
)

// rulesStatus is the status line of the routing rules.
type rulesStatus struct {
	Kind string `json:"kind"`
	ops.StoredRules
	Note string `json:"note,omitempty"`
}

func status(ctx context.Context, c *cli, g *globals, js jetstream.JetStream) error {
	declared, err := g.declared(c)
	if err != nil {
		return err
	}
	p := g.printer(c)
	var missing []string
	streams, err := ops.Streams(ctx, js, declared.Streams)
	if err != nil {
		return err
	}
	for _, s := range streams {
		if s.Missing {
			missing = append(missing, "stream "+s.Name)
			p.emit(s, "stream   %-8s MISSING", s.Name)
			continue
		}
		p.emit(s, "stream   %-8s %d msgs, %d bytes, first #%d %s, last #%d %s", s.Name, s.Messages, s.Bytes, s.FirstSeq, when(s.First), s.LastSeq, when(s.Last))
	}
	consumers, err := ops.Consumers(ctx, js, declared.Consumers)
	if err != nil {
		return err
	}
	for _, cs := range consumers {
		if cs.Missing {
			missing = append(missing, "consumer "+cs.Name)
			p.emit(cs, "consumer %-20s MISSING", cs.Name)
			continue
		}
		last := "never"
		if cs.LastActivity != nil {
			last = when(*cs.LastActivity)
		}
		p.emit(cs, "consumer %-20s %d pending, %d ack pending, %d redelivered, last activity %s", cs.Name, cs.Pending, cs.AckPending, cs.Redelivered, last)
	}
	if !streamMissing(streams, "DLQ") {
		d, err := ops.DLQDepth(ctx, js)
		if err != nil {
			return err
		}
		p.emit(d, "dlq      %d dead letter(s)%s", d.Depth, breakdown(d.ByStage, d.ByReason))
	}
	bucket := g.routesBucket(c)
	r, err := ops.GetRules(ctx, js, bucket)
	rs := rulesStatus{Kind: "rules", StoredRules: r}
	switch {
	case errors.Is(err, ops.ErrNoRules), errors.Is(err, jetstream.ErrBucketNotFound):
		rs.Bucket, rs.Note = bucket, err.Error()
		p.emit(rs, "rules    %s", err)
	case err != nil:
		return err
	case r.Invalid != "":
		p.emit(rs, "rules    kv %s rev %d is INVALID (the router keeps its last good rules): %s", bucket, r.Revision, r.Invalid)
	default:
		p.emit(rs, "rules    kv %s rev %d: %s", bucket, r.Revision, r.InForce)
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s: run clerknovu provision", strings.Join(missing, ", "))
	}
	return nil
}

func streamMissing(ss []ops.StreamStatus, name string) bool {
	for _, s := range ss {
		if s.Name == name {
			return s.Missing
		}
	}
	return true
}

func breakdown(byStage, byReason map[string]int) string {
	if len(byStage) == 0 {
		return ""
	}
	var parts []string
	for _, k := range ops.Counts(byStage) {
		parts = append(parts, fmt.Sprintf("%s %d", k, byStage[k]))
	}
	s := ": " + strings.Join(parts, ", ")
	for _, k := range ops.Counts(byReason) {
		s += fmt.Sprintf("\n         %5d  %s", byReason[k], k)
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
