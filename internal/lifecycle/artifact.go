package lifecycle

import (
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
