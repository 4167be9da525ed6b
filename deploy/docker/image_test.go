package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// modulesLine is the Dockerfile's build loop: "for m in <modules>; do".
var modulesLine = regexp.MustCompile(`for m in ([^;]+); do`)

// TestImageModulesBuildOnTheirOwn runs the image's build step for each
// module it lists, as the Dockerfile does: outside the workspace
// (GOWORK=off), with cgo off and the local toolchain. A module whose go.mod
// lacks a require, a replace of a sibling or a go.sum line passes every
// workspace test and still breaks the image; this catches it without a
// Docker engine. The binaries are linked and thrown away.
func TestImageModulesBuildOnTheirOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("links four binaries")
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := modulesLine.FindSubmatch(df)
	if m == nil {
		t.Fatal(`Dockerfile: no "for m in <modules>; do" build loop`)
	}
	modules := strings.Fields(string(m[1]))
	want := []string{"services/receiver", "services/router", "services/novu-sink", "cmd/clerknovu"}
	if !slices.Equal(modules, want) {
		t.Errorf("the image builds %v, want %v (the three services and the CLI)", modules, want)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range modules {
		t.Run(mod, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "go", "build", "-o", os.DevNull, ".")
			cmd.Dir = filepath.Join(root, mod)
			cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOWORK=off go build in %s: %v\n%s", mod, err, out)
			}
		})
	}
}
