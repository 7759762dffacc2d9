package setup

import (
	"fmt"
	"os"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/lifecycle"
)

// adminShadowed maps a function name to the short-route paths the gateway's
// own endpoints answer on the main listener (without --admin-listen)
// before routing: a function of that name never sees them there.
var adminShadowed = map[string]string{
	"health":  "/health and /health/ready",
	"metrics": "/metrics",
	"debug":   "/debug/pprof/*",
}

// StartupWarnings lists what serve logs and check prints as warnings: the
// layout's (config.toml sections and folders that are not functions),
// variables dropped from functions' environments, and functions whose
// short route is shadowed by the gateway's endpoints.
func StartupWarnings(opts config.Options, layout *config.Layout) []string {
	warnings := append([]string(nil), layout.Warnings...)
	// An error here is reported by whoever builds the environments.
	if envWarnings, err := lifecycle.EnvWarnings(opts, layout, os.Environ()); err == nil {
		warnings = append(warnings, envWarnings...)
	}
	if missing, err := lifecycle.ArtifactEnvWarnings(opts, layout, os.Environ()); err == nil {
		warnings = append(warnings, missing...)
	}
	return append(warnings, shadowWarnings(opts, layout)...)
}

// shadowWarnings names the functions whose short-route paths the admin
// endpoints take.
func shadowWarnings(opts config.Options, layout *config.Layout) []string {
	if opts.AdminListen != "" {
		return nil
	}
	var out []string
	for _, fn := range layout.Functions {
		if paths, ok := adminShadowed[fn.Name]; ok {
			out = append(out, fmt.Sprintf("function %s: %s on the short route are the gateway's own endpoints and never reach it; call it as /functions/v1/%s (or move the endpoints with --admin-listen)", fn.Name, paths, fn.Name))
		}
	}
	return out
}
