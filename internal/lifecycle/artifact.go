package lifecycle

import (
	"fmt"
	"path/filepath"
	"strings"

	"edgeway.dev/edgeway/internal/artifact"
	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// logArtifact says which verified artifact a layout serves (nothing for a
// functions folder): its manifest's sha256 names the version.
func logArtifact(log zerolog.Logger, layout *config.Layout, msg string) {
	a := layout.Artifact
	if a == nil {
		return
	}
	log.Info().Str("artifact", a.Source).Str("artifact_id", a.ID).Str("dir", a.Dir).Bool("signed", a.Signed).
		Str("built_by", a.Manifest.Edgeway).Str("built_with_deno", a.Manifest.Deno).Int("functions", len(a.Manifest.Functions)).Msg(msg)
}

// Artifact is the verified artifact the functions last applied come from;
// nil for a functions folder. The deploy endpoint records it as the
// version a first rollback returns to.
func (s *Supervisor) Artifact() *config.ArtifactInfo { return s.currentLayout().Artifact }

// ArtifactEnvWarnings names, per function of a prebuilt artifact, the
// variables its manifest says its code reads that its environment (as
// workers get it, from environ) does not set. Nothing for a folder.
func ArtifactEnvWarnings(opts config.Options, layout *config.Layout, environ []string) ([]string, error) {
	if layout.Artifact == nil {
		return nil, nil
	}
	envs, _, err := resolveEnvs(opts, layout, environ)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range layout.Artifact.Manifest.Functions {
		set := map[string]bool{}
		for _, kv := range envs[f.Name].vars {
			if k, _, ok := strings.Cut(kv, "="); ok {
				set[k] = true
			}
		}
		var missing []string
		for _, name := range f.Env {
			if !set[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("function %s reads %s (the artifact's manifest says) but its environment does not set them", f.Name, strings.Join(missing, ", ")))
		}
	}
	return out, nil
}

// addArtifactSource adds to files (folder → names) what --prebuilt names:
// a package file (replaced by a rename in its folder) or an artifact
// folder (renamed into place, or its manifest.json rewritten), so the
// watcher reloads a changed artifact as it does a changed folder.
func addArtifactSource(layout *config.Layout, files map[string]map[string]bool) {
	a := layout.Artifact
	if a == nil {
		return
	}
	add := func(dir, name string) {
		if files[dir] == nil {
			files[dir] = map[string]bool{}
		}
		files[dir][name] = true
	}
	src := config.Resolved(a.Source)
	add(filepath.Dir(src), filepath.Base(src))
	if src == config.Resolved(a.Dir) {
		add(src, artifact.ManifestName)
	}
}
