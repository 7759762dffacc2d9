package lifecycle

import (
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/artifact"
	"edgeway.dev/edgeway/internal/config"
)

func TestArtifactEnvWarnings(t *testing.T) {
	dir := t.TempDir()
	layout := &config.Layout{Root: dir, Functions: []config.Function{{Name: "f", Dir: dir}, {Name: "g", Dir: dir}},
		Artifact: &config.ArtifactInfo{Manifest: &artifact.Manifest{Functions: []artifact.Function{
			{Name: "f", Env: []string{"SET_ONE", "MISSING_ONE", "MISSING_TWO"}},
			{Name: "g", Env: []string{"SET_ONE"}},
		}}}}
	got, err := ArtifactEnvWarnings(config.Defaults(), layout, []string{"SET_ONE=x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "function f reads MISSING_ONE, MISSING_TWO") {
		t.Fatalf("warnings %q", got)
	}
	if got, _ := ArtifactEnvWarnings(config.Defaults(), &config.Layout{Root: dir}, nil); got != nil {
		t.Fatalf("a folder got warnings %q", got)
	}
}
