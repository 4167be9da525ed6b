package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole bench with -smoke, in-process, and checks only
// correctness: the JSON report is written, every phase ran, and every
// expected trigger reached the fake Novu exactly once with nothing
// dead-lettered. It asserts nothing about timing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	path := filepath.Join(t.TempDir(), "bench.json")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-smoke", "-q", "-json", path}, &out, io.Discard); err != nil {
		t.Fatalf("bench -smoke: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("JSON report not written: %v", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if len(r.Ingest) != 1 || r.Ingest[0].Ceiling.OK == 0 || r.Ingest[0].Ingest.OK == 0 || r.Ingest[0].Ingest.Failed != 0 {
		t.Errorf("ingest = %+v, want one row with phase A and B messages and no B failure", r.Ingest)
	}
	if len(r.Delivery) != 3 {
		t.Fatalf("got %d end-to-end phases, want 3 (fixed rate, burst, rate-limited burst)", len(r.Delivery))
	}
	for _, d := range r.Delivery {
		if d.Expected == 0 || d.Delivered != d.Expected || d.Lost != 0 || d.Duplicates != 0 || d.Unexpected != 0 || d.DeadLettered != 0 || d.Accepted != d.Webhooks {
			t.Errorf("%s: %d/%d webhooks accepted, %d/%d triggers delivered, %d lost, %d duplicates, %d unexpected, %d dead-lettered (%s)",
				d.Name, d.Accepted, d.Webhooks, d.Delivered, d.Expected, d.Lost, d.Duplicates, d.Unexpected, d.DeadLettered, d.Error)
		}
	}
	if !strings.Contains(out.String(), "B ingest") {
		t.Errorf("table lacks the ingest rows:\n%s", out.String())
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		name    string
		given   string
		want    map[string]float64 // share of the named samples
		wantErr bool
	}{
		{name: "one sample", given: "user.created", want: map[string]float64{"user.created": 1}},
		{name: "weights", given: "user.created=3,session.created=1", want: map[string]float64{"user.created": 0.75, "session.created": 0.25}},
		{name: "catalog after a sample keeps the sample's share", given: "user.created=50,catalog=50", want: map[string]float64{"user.created": 0.5 + 0.5/float64(len(plainSamples()))}},
		{name: "catalog before a sample", given: "catalog=50,user.created=50", want: map[string]float64{"user.created": 0.5 + 0.5/float64(len(plainSamples()))}},
		{name: "a variant", given: "email.created/magic_link_sign_in", want: map[string]float64{"email.created/magic_link_sign_in": 1}},
		{name: "unknown sample", given: "user.exploded", wantErr: true},
		{name: "bad weight", given: "user.created=x", wantErr: true},
		{name: "all zero", given: "user.created=0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMix(tt.given)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseMix(%q) error = %v, want error %v", tt.given, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			for name, want := range tt.want {
				got := 0.0
				for _, e := range m.entries {
					if e.sample.Name == name {
						got = float64(e.weight) / float64(m.total)
					}
				}
				if diff := got - want; diff > 1e-9 || diff < -1e-9 {
					t.Errorf("share of %s = %.4f, want %.4f", name, got, want)
				}
			}
		})
	}
}

func plainSamples() []string {
	m, _ := parseMix(catalogMix)
	var out []string
	for _, e := range m.entries {
		out = append(out, e.sample.Name)
	}
	return out
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Latency{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

func TestBodyVariant(t *testing.T) {
	body := []byte(`{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC","owner":"user_29w83sxmDNGwOuEthce5gg56FcC"},"type":"user.created"}`)
	if got := bodyVariant(body, 0); !bytes.Equal(got, body) {
		t.Errorf("variant 0 = %s, want the original", got)
	}
	v := bodyVariant(body, 35)
	want := `{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56Fcz","owner":"user_29w83sxmDNGwOuEthce5gg56Fcz"},"type":"user.created"}`
	if string(v) != want {
		t.Errorf("variant 35 = %s, want %s", v, want)
	}
	if len(v) != len(body) {
		t.Errorf("variant changed the size: %d, want %d", len(v), len(body))
	}
}

// TestUsesLegacyAddrs: the old ops address names are set only for a
// checkout whose router predates ROUTER_OPS_ADDR; today's services refuse
// them at start.
func TestUsesLegacyAddrs(t *testing.T) {
	for _, tt := range []struct {
		source string
		want   bool
	}{
		{`env.String("ROUTER_ADDR", ":8081")`, true},
		{`env.String("ROUTER_OPS_ADDR", ":8081")`, false},
	} {
		ws := t.TempDir()
		dir := filepath.Join(ws, "services", "router", "app")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.go"), []byte("package app\n// "+tt.source+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := usesLegacyAddrs(ws); got != tt.want {
			t.Errorf("router reading %s: usesLegacyAddrs = %v, want %v", tt.source, got, tt.want)
		}
	}
	if usesLegacyAddrs(filepath.Join("..", "..")) {
		t.Error("this workspace's router is taken for an old one")
	}
}
