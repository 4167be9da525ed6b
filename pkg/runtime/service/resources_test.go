package service

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelmProvisionGetsEveryResourceSetting: the Helm chart's provisioning
// Job copies the settings Env.Resources reads from the router's and the
// sink's env (clerk-novu.resourceEnv lists them, as a template cannot ask
// Go). A setting added here and not there would make the Job provision
// consumers the services then find drifted, so the two lists must match.
// The STREAM_* and NATS_* settings reach the Job another way.
func TestHelmProvisionGetsEveryResourceSetting(t *testing.T) {
	var read []string
	NewEnv(func(k string) string {
		if !strings.HasPrefix(k, "STREAM_") && !strings.HasPrefix(k, "NATS_") && !slices.Contains(read, k) {
			read = append(read, k)
		}
		return ""
	}).Resources()
	slices.Sort(read)

	tpl, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "helm", "clerk-novu", "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`(?s)define "clerk-novu.resourceEnv".*?\{\{- range`).Find(tpl)
	if def == nil {
		t.Fatal(`_helpers.tpl: no "clerk-novu.resourceEnv" key lists`)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`"([A-Z][A-Z0-9_]+)"`).FindAllSubmatch(def, -1) {
		listed = append(listed, string(m[1]))
	}
	slices.Sort(listed)
	if !slices.Equal(read, listed) {
		t.Errorf("Env.Resources reads %v; the chart's provisioning Job copies %v", read, listed)
	}
}
