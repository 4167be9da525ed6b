package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// The bench routes with its own rules file (ROUTES_FILE, mode replace), so
// the triggers it expects follow from its own configuration, not from a copy
// of the router's built-in rules: one workflow per routed type, email.created
// by its slug, and every other type dropped by the router (acked, no trigger).
var benchRoutes = map[string]string{
	"user.created":                   "user-created",
	"session.created":                "recent-login-v2",
	"organizationMembership.created": "organization-membership-created",
}

// benchEmailType is routed by data.slug through [benchEmailSlugs].
const benchEmailType = "email.created"

// benchEmailSlugs maps every email.created slug of the samples to its own
// workflow, email-<slug with hyphens>.
func benchEmailSlugs() map[string]string {
	out := map[string]string{}
	for _, s := range samples.All() {
		if s.Type == benchEmailType && s.Slug != "" {
			out[s.Slug] = "email-" + strings.ReplaceAll(s.Slug, "_", "-")
		}
	}
	return out
}

// routesYAML renders the rules file for [benchRoutes] and [benchEmailSlugs].
func routesYAML() string {
	types := slices.Sorted(maps.Keys(benchRoutes))
	var b strings.Builder
	b.WriteString("# Written by deploy/bench: its expectations follow from these rules.\nversion: 1\nmode: replace\nrules:\n")
	for _, t := range types {
		fmt.Fprintf(&b, "  - match: %s\n    workflows: [%s]\n", t, benchRoutes[t])
	}
	slugs := benchEmailSlugs()
	fmt.Fprintf(&b, "  - match: %s\n    slugs:\n", benchEmailType)
	for _, s := range slices.Sorted(maps.Keys(slugs)) {
		fmt.Fprintf(&b, "      %s: %s\n", s, slugs[s])
	}
	b.WriteString("  - match: \"*\"\n    drop: true\n")
	return b.String()
}

// writeRoutes writes the rules file into dir and returns its path.
func writeRoutes(dir string) (string, error) {
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(routesYAML()), 0o600); err != nil {
		return "", fmt.Errorf("write routes: %w", err)
	}
	return path, nil
}

// expectedWorkflows returns the workflows the router triggers for a sample
// under [routesYAML].
func expectedWorkflows(s samples.Sample) []string {
	if wf, ok := benchRoutes[s.Type]; ok {
		return []string{wf}
	}
	if wf, ok := benchEmailSlugs()[s.Slug]; ok && s.Type == benchEmailType {
		return []string{wf}
	}
	return nil
}
