package config

// helpGroups titles the flags in `edgeway help`: each group starts at the
// flag named and runs to the next group's (specs keep related flags
// together, so a flag added beside its kin lands in the right group).
var helpGroups = []struct{ first, title string }{
	{"functions", "Server"},
	{"min-workers", "Workers (defaults of each function.json)"},
	{"upstream-max-idle-conns", "Gateway to workers"},
	{"max-body", "Client requests and connections"},
	{"rate-limit", "Guards: rate limit, proxies, CORS, circuit breaker"},
	{"watch", "Reload and development"},
	{"auth", "Auth (JWT, API keys)"},
	{"public-functions", "Functions: access, environment, permissions"},
	{"internal-key", "Observability: metrics, health, profiles, logs"},
	{"prebuilt", "Prebuilt artifacts and deploys"},
}

// helpGroupTitle is the title of the group starting at flag name, if any.
func helpGroupTitle(name string) string {
	for _, g := range helpGroups {
		if g.first == name {
			return g.title
		}
	}
	return ""
}
