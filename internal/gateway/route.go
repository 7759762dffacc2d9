package gateway

// v1Prefix is Supabase's route prefix; only it is removed from the path the
// function sees.
const v1Prefix = "/functions/v1"

// splitRoute finds the function name in a raw request URI and the URI the
// function must see. Supabase route: /functions/v1/<name>[/rest][?q] → the
// function sees /<name>[/rest][?q]. Short route: /<name>[/rest][?q] → the
// function sees /[rest][?q]. needsSlash reports that fnURI must be prefixed
// with "/" (short route with nothing or only a query after the name).
// It never allocates: name and fnURI alias uri.
func splitRoute(uri []byte) (name, fnURI []byte, needsSlash, ok bool) {
	if len(uri) < 2 || uri[0] != '/' {
		return nil, nil, false, false
	}
	if hasPrefix(uri, v1Prefix) && len(uri) > len(v1Prefix)+1 && uri[len(v1Prefix)] == '/' {
		fnURI = uri[len(v1Prefix):]
		name = segment(fnURI[1:])
		return name, fnURI, false, len(name) > 0
	}
	name = segment(uri[1:])
	if len(name) == 0 {
		return nil, nil, false, false
	}
	fnURI = uri[1+len(name):]
	return name, fnURI, len(fnURI) == 0 || fnURI[0] == '?', true
}

// segment returns b up to the first '/' or '?'.
func segment(b []byte) []byte {
	for i, c := range b {
		if c == '/' || c == '?' {
			return b[:i]
		}
	}
	return b
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// pathOnly returns uri without its query.
func pathOnly(uri []byte) []byte {
	for i, c := range uri {
		if c == '?' {
			return uri[:i]
		}
	}
	return uri
}
