package secure

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// EnvVar is one assignment of a .env file. Line is where its key is.
type EnvVar struct {
	Key, Value string
	Line       int
}

// ParseDotEnv parses a .env file. It returns the assignments in file order,
// duplicates included (the last one should win). The syntax:
//
//	# a comment line
//	export KEY=value          # "export " is optional; the comment is dropped
//	KEY = value#not-a-comment # "#" starts a comment only after a blank
//	EMPTY=
//	LITERAL='no $escapes \n here'
//	ESCAPED="tab\tnewline\n quote\" backslash\\ kept\q"
//	MULTI="line one
//	line two"
//
// Keys match [A-Za-z_][A-Za-z0-9_.]*. Unquoted values are trimmed. Double
// quotes understand \n \r \t \" and \\; other escapes are kept as written.
// Single quotes are literal. Quoted values may span lines. There is no
// ${VAR} expansion. CRLF line ends and a UTF-8 byte order mark are accepted.
// A malformed line is an error "<filename>:<line>: <reason>".
func ParseDotEnv(filename string, data []byte) ([]EnvVar, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("%s:%d: NUL byte", filename, 1+bytes.Count(data[:i], []byte("\n")))
	}
	p := dotenvParser{s: strings.ReplaceAll(string(data), "\r\n", "\n"), line: 1}
	var vars []EnvVar
	for !p.done() {
		line := p.line
		v, ok, err := p.next()
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", filename, line, err)
		}
		if ok {
			vars = append(vars, v)
		}
	}
	return vars, nil
}

// dotenvParser walks the file. pos is always at the start of a line
// between calls of next.
type dotenvParser struct {
	s    string
	pos  int
	line int
}

func (p *dotenvParser) done() bool { return p.pos >= len(p.s) }

// eol reports whether pos is at the end of a line or of the file.
func (p *dotenvParser) eol() bool { return p.done() || p.s[p.pos] == '\n' }

func (p *dotenvParser) skipBlanks() (skipped bool) {
	for !p.done() && isBlank(p.s[p.pos]) {
		p.pos++
		skipped = true
	}
	return skipped
}

// endLine moves past the rest of the line, which must be blank or a
// comment.
func (p *dotenvParser) endLine() error {
	p.skipBlanks()
	if !p.eol() && p.s[p.pos] != '#' {
		return fmt.Errorf("unexpected %q after the value", p.s[p.pos])
	}
	for !p.eol() {
		p.pos++
	}
	if !p.done() {
		p.pos++
		p.line++
	}
	return nil
}

// next parses one line (or a multi-line assignment). ok is false for a
// blank or comment line.
func (p *dotenvParser) next() (v EnvVar, ok bool, err error) {
	v.Line = p.line
	p.skipBlanks()
	if p.eol() || p.s[p.pos] == '#' {
		return v, false, p.endLine()
	}
	if v.Key, err = p.key(); err != nil {
		return v, false, err
	}
	if v.Value, err = p.value(); err != nil {
		return v, false, err
	}
	return v, true, p.endLine()
}

// key reads "[export ]KEY =" and returns KEY.
func (p *dotenvParser) key() (string, error) {
	if rest := p.s[p.pos:]; strings.HasPrefix(rest, "export") && len(rest) > 6 && isBlank(rest[6]) {
		p.pos += 6
		p.skipBlanks()
	}
	start := p.pos
	for !p.eol() && !isBlank(p.s[p.pos]) && p.s[p.pos] != '=' {
		p.pos++
	}
	key := p.s[start:p.pos]
	if !validEnvKey(key) {
		return "", fmt.Errorf("invalid variable name %q", key)
	}
	p.skipBlanks()
	if p.eol() || p.s[p.pos] != '=' {
		return "", fmt.Errorf("expected = after %s", key)
	}
	p.pos++
	return key, nil
}

// value reads the value after "=".
func (p *dotenvParser) value() (string, error) {
	blank := p.skipBlanks()
	switch {
	case p.eol():
		return "", nil
	case p.s[p.pos] == '\'':
		return p.singleQuoted()
	case p.s[p.pos] == '"':
		return p.doubleQuoted()
	case p.s[p.pos] == '#' && blank:
		return "", nil // KEY= # comment
	}
	start := p.pos
	for !p.eol() && !(p.s[p.pos] == '#' && isBlank(p.s[p.pos-1])) {
		p.pos++
	}
	return strings.TrimRight(p.s[start:p.pos], " \t"), nil
}

func (p *dotenvParser) singleQuoted() (string, error) {
	end := strings.IndexByte(p.s[p.pos+1:], '\'')
	if end < 0 {
		return "", errors.New("unterminated single-quoted value")
	}
	v := p.s[p.pos+1 : p.pos+1+end]
	p.line += strings.Count(v, "\n")
	p.pos += end + 2
	return v, nil
}

func (p *dotenvParser) doubleQuoted() (string, error) {
	var b strings.Builder
	for i := p.pos + 1; i < len(p.s); i++ {
		c := p.s[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return b.String(), nil
		case c == '\\' && i+1 < len(p.s):
			i++
			if e, ok := unescape(p.s[i]); ok {
				b.WriteByte(e)
				continue
			}
			b.WriteByte('\\') // unknown escape: keep it as written
			c = p.s[i]
			if c == '\n' {
				p.line++
			}
		case c == '\n':
			p.line++
		}
		b.WriteByte(c)
	}
	return "", errors.New("unterminated double-quoted value")
}

// unescape returns the byte a backslash followed by c stands for; ok is
// false for an escape it does not know.
func unescape(c byte) (e byte, ok bool) {
	switch c {
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	case '"', '\\':
		return c, true
	}
	return 0, false
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// validEnvKey reports whether k matches [A-Za-z_][A-Za-z0-9_.]*.
func validEnvKey(k string) bool {
	if k == "" || ('0' <= k[0] && k[0] <= '9') || k[0] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
