package guard

// asciiCaseBit is the bit that distinguishes ASCII upper and lower case
// letters.
const asciiCaseBit = 'a' - 'A'

// equalFoldASCII compares two ASCII tokens case-insensitively.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + asciiCaseBit
	}
	return c
}

// trimSpace removes HTTP optional whitespace (spaces and tabs) around b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
