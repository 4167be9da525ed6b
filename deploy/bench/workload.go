package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// webhook is one signed delivery, ready to post.
type webhook struct {
	svixID    string
	sample    string
	eventType string
	body      []byte
	header    http.Header
	// workflows are the triggers the router makes of it (see [expectedWorkflows]).
	workflows []string
}

// mixEntry is one sample and its share of the traffic.
type mixEntry struct {
	sample samples.Sample
	weight int
}

// mix is a weighted choice of samples.
type mix struct {
	entries []mixEntry
	total   int
}

// catalogMix names every sample that is a plain event type (no variant) in
// a -mix, e.g. "user.created=50,catalog=50".
const catalogMix = "catalog"

// parseMix reads "name=weight,..." where name is a sample ([samples.Names])
// or "catalog" (every plain event type, sharing the weight equally); a name
// without "=weight" weighs 1.
func parseMix(spec string) (mix, error) {
	var plain []string
	for _, n := range samples.Names() {
		if !strings.Contains(n, "/") {
			plain = append(plain, n)
		}
	}
	// Every weight is scaled by len(plain) so catalog's shares stay whole.
	weights := map[string]int{}
	var order []string
	add := func(name string, w int) {
		if _, ok := weights[name]; !ok {
			order = append(order, name)
		}
		weights[name] += w
	}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, ws, hasWeight := strings.Cut(part, "=")
		w := 1
		if hasWeight {
			n, err := strconv.Atoi(ws)
			if err != nil || n < 0 {
				return mix{}, fmt.Errorf("-mix: weight of %q: want a whole number, got %q", name, ws)
			}
			w = n
		}
		if name == catalogMix {
			for _, n := range plain {
				add(n, w)
			}
			continue
		}
		if _, ok := samples.Get(name); !ok {
			return mix{}, fmt.Errorf("-mix: no sample %q (want %s or one of %s)", name, catalogMix, strings.Join(samples.Names(), ", "))
		}
		add(name, w*len(plain))
	}
	var m mix
	for _, name := range order {
		if weights[name] == 0 {
			continue
		}
		s, _ := samples.Get(name)
		m.entries = append(m.entries, mixEntry{sample: s, weight: weights[name]})
		m.total += weights[name]
	}
	if m.total == 0 {
		return mix{}, fmt.Errorf("-mix %q: no sample with a positive weight", spec)
	}
	return m, nil
}

// String describes the mix as percentages, largest first.
func (m mix) String() string {
	type share struct {
		name string
		pct  float64
	}
	var shares []share
	for _, e := range m.entries {
		shares = append(shares, share{e.sample.Name, 100 * float64(e.weight) / float64(m.total)})
	}
	sort.SliceStable(shares, func(i, j int) bool { return shares[i].pct > shares[j].pct })
	var b strings.Builder
	rest := 0.0
	for i, s := range shares {
		if i >= 4 {
			rest += s.pct
			continue
		}
		fmt.Fprintf(&b, "%s %.0f%%, ", s.name, s.pct)
	}
	if rest > 0 {
		fmt.Fprintf(&b, "%d other types %.0f%%", len(shares)-4, rest)
	}
	return strings.TrimSuffix(b.String(), ", ")
}

// meanBodyBytes is the expected body size of the mix.
func (m mix) meanBodyBytes() int {
	sum := 0
	for _, e := range m.entries {
		sum += len(e.sample.Body) * e.weight
	}
	return sum / m.total
}

// variantsPerSample bounds the distinct bodies made of each sample.
const variantsPerSample = 1024

// generator makes webhooks of a mix: each one a fresh svix-id and, per
// sample, one of up to [variantsPerSample] bodies that differ in data.id (so
// a bulk import names distinct users), signed for the receiver's secret.
type generator struct {
	secret   string
	mix      mix
	rng      *rand.Rand
	variants map[string][][]byte
	next     map[string]int
}

func newGenerator(secret string, m mix, seed uint64) *generator {
	return &generator{
		secret:   secret,
		mix:      m,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		variants: map[string][][]byte{},
		next:     map[string]int{},
	}
}

// pick returns the next sample of the mix, at random by weight.
func (g *generator) pick() samples.Sample {
	r := g.rng.IntN(g.mix.total)
	for _, e := range g.mix.entries {
		if r < e.weight {
			return e.sample
		}
		r -= e.weight
	}
	return g.mix.entries[len(g.mix.entries)-1].sample
}

// body returns the next variant of s's body.
func (g *generator) body(s samples.Sample) []byte {
	vs := g.variants[s.Name]
	i := g.next[s.Name]
	g.next[s.Name] = i + 1
	if i < variantsPerSample {
		vs = append(vs, bodyVariant(s.Body, i))
		g.variants[s.Name] = vs
		return vs[i]
	}
	return vs[i%len(vs)]
}

// bodyVariant replaces the last characters of data.id, wherever that id
// occurs, with a base62 rendering of i of the same length; bodies without an
// id of at least 8 characters are returned unchanged. Variant 0 is the
// original.
func bodyVariant(body []byte, i int) []byte {
	if i == 0 {
		return body
	}
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Data.ID) < 8 {
		return body
	}
	id := env.Data.ID
	suffix := []byte(strconv.FormatInt(int64(i), 36))
	if len(suffix) > 5 {
		return body
	}
	newID := id[:len(id)-len(suffix)] + string(suffix)
	return bytes.ReplaceAll(body, []byte(`"`+id+`"`), []byte(`"`+newID+`"`))
}

// make returns n webhooks of the mix, or n of only the named sample when
// only is set, signed now, in parallel on every core.
func (g *generator) make(n int, only string) ([]webhook, error) {
	out := make([]webhook, n)
	var fixed samples.Sample
	if only != "" {
		s, ok := samples.Get(only)
		if !ok {
			return nil, fmt.Errorf("no sample %q", only)
		}
		fixed = s
	}
	for i := range out {
		s := fixed
		if only == "" {
			s = g.pick()
		}
		out[i] = webhook{svixID: samples.NewSvixID(), sample: s.Name, eventType: s.Type, body: g.body(s), workflows: expectedWorkflows(s)}
	}
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				h, err := samples.Sign(g.secret, out[i].svixID, now, out[i].body)
				if err != nil {
					errs[w] = err
					return
				}
				hdr := make(http.Header, len(h)+1)
				for k, v := range h {
					hdr[http.CanonicalHeaderKey(k)] = []string{v}
				}
				hdr["Content-Type"] = []string{"application/json"}
				out[i].header = hdr
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	return out, nil
}
