package secure

import (
	"slices"
	"strings"
	"testing"
)

func TestParseDotEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []EnvVar
	}{
		{"simple", "A=1\nB=two\n", []EnvVar{{"A", "1", 1}, {"B", "two", 2}}},
		{"no final newline", "A=1", []EnvVar{{"A", "1", 1}}},
		{"empty file", "", nil},
		{"comments and blanks", "# top\n\n  # indented\nA=1\n\n", []EnvVar{{"A", "1", 4}}},
		{"export", "export A=1\nexport\tB=2\n", []EnvVar{{"A", "1", 1}, {"B", "2", 2}}},
		{"key named export", "export=1\n", []EnvVar{{"export", "1", 1}}},
		{"key starting with export", "exported=1\n", []EnvVar{{"exported", "1", 1}}},
		{"spaces around =", "A = 1\n  B\t=\t2  \n", []EnvVar{{"A", "1", 1}, {"B", "2", 2}}},
		{"empty values", "A=\nB=  \nC=''\nD=\"\"\n", []EnvVar{{"A", "", 1}, {"B", "", 2}, {"C", "", 3}, {"D", "", 4}}},
		{"inline comment", "A=value # note\nB=x\t# tab note\n", []EnvVar{{"A", "value", 1}, {"B", "x", 2}}},
		{"hash inside value", "A=abc#def\nB=#nocomment\n", []EnvVar{{"A", "abc#def", 1}, {"B", "#nocomment", 2}}},
		{"comment as value", "A= # only a comment\n", []EnvVar{{"A", "", 1}}},
		{"equals in value", "URL=postgres://u:p@h/db?sslmode=require&a=b\n", []EnvVar{{"URL", "postgres://u:p@h/db?sslmode=require&a=b", 1}}},
		{"inner spaces kept", "A=hello  world  \n", []EnvVar{{"A", "hello  world", 1}}},
		{"single quotes literal", `A='x\ny $HOME "q" # not comment'` + "\n", []EnvVar{{"A", `x\ny $HOME "q" # not comment`, 1}}},
		{"double quote escapes", `A="tab\tnl\ncr\rq\"bs\\"` + "\n", []EnvVar{{"A", "tab\tnl\ncr\rq\"bs\\", 1}}},
		{"unknown escapes kept", `A="\$x \q \u00e9"` + "\n", []EnvVar{{"A", `\$x \q \u00e9`, 1}}},
		{"quoted then comment", `A="v" # c` + "\nB='w'#c\n", []EnvVar{{"A", "v", 1}, {"B", "w", 2}}},
		{"quoted keeps spaces", `A="  padded  "` + "\n", []EnvVar{{"A", "  padded  ", 1}}},
		{"multi-line double", "A=\"line 1\nline 2\"\nB=3\n", []EnvVar{{"A", "line 1\nline 2", 1}, {"B", "3", 3}}},
		{"multi-line single", "A='-----BEGIN KEY-----\nabc\n-----END KEY-----'\nB=4\n", []EnvVar{{"A", "-----BEGIN KEY-----\nabc\n-----END KEY-----", 1}, {"B", "4", 4}}},
		{"CRLF", "A=1\r\nB=\"x\r\ny\"\r\n# c\r\nC=3\r\n", []EnvVar{{"A", "1", 1}, {"B", "x\ny", 2}, {"C", "3", 5}}},
		{"BOM", "\ufeffA=1\n", []EnvVar{{"A", "1", 1}}},
		{"dotted and underscored keys", "_A=1\na.b_C9=2\n", []EnvVar{{"_A", "1", 1}, {"a.b_C9", "2", 2}}},
		{"duplicates kept in order", "A=1\nA=2\n", []EnvVar{{"A", "1", 1}, {"A", "2", 2}}},
		{"quote inside unquoted", `A=it's "fine"` + "\n", []EnvVar{{"A", `it's "fine"`, 1}}},
		{"utf-8", "A=héllo ✓\n", []EnvVar{{"A", "héllo ✓", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotEnv(".env", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseDotEnv =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseDotEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"no equals", "A=1\nJUSTAWORD\n", "functions/.env:2: expected = after JUSTAWORD"},
		{"key with dash", "MY-KEY=1\n", `functions/.env:1: invalid variable name "MY-KEY"`},
		{"key starting with digit", "\n\n1A=1\n", `functions/.env:3: invalid variable name "1A"`},
		{"key starting with dot", ".A=1\n", `functions/.env:1: invalid variable name ".A"`},
		{"empty key", "=1\n", `functions/.env:1: invalid variable name ""`},
		{"space in key", "A B=1\n", "functions/.env:1: expected = after A"},
		{"unterminated double", "A=1\nB=\"abc\nC=2\n", "functions/.env:2: unterminated double-quoted value"},
		{"unterminated single", "A='abc\n", "functions/.env:1: unterminated single-quoted value"},
		{"trailing backslash", `A="abc\`, "functions/.env:1: unterminated double-quoted value"},
		{"text after quote", "A=\"abc\"def\n", `functions/.env:1: unexpected 'd' after the value`},
		{"NUL byte", "A=1\nB=\x00\n", "functions/.env:2: NUL byte"},
		{"line after multi-line", "A=\"x\ny\"\nB C\n", "functions/.env:3: expected = after B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotEnv("functions/.env", []byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("ParseDotEnv = %+v, %v; want error %q", got, err, tt.want)
			}
		})
	}
}

// formatDotEnv writes vars back as KEY="escaped" lines, the inverse of
// ParseDotEnv for the values it returns.
func formatDotEnv(vars []EnvVar) []byte {
	var b strings.Builder
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	for _, v := range vars {
		b.WriteString(v.Key + `="` + esc.Replace(v.Value) + "\"\n")
	}
	return []byte(b.String())
}

func FuzzParseDotEnv(f *testing.F) {
	seeds := []string{
		"A=1\n", "export A = 'x'\n", "A=\"a\\nb\\\"c\"\n# c\nB=x #y\n", "A=\"multi\nline\"\r\n",
		"A='single\nmulti'\n", "A=\"\\q\\\\\\\n\"", "\ufeffA=1", "A= #c\nB=#v\n", "A=\"x\" # c\n", "=\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseDotEnv("fuzz.env", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.env:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, v := range vars {
			if !validEnvKey(v.Key) || v.Line < 1 {
				t.Fatalf("bad var %+v", v)
			}
		}
		again, err := ParseDotEnv("fuzz.env", formatDotEnv(vars))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(vars) {
			t.Fatalf("re-parse: %d vars, want %d", len(again), len(vars))
		}
		for i := range vars {
			if again[i].Key != vars[i].Key || again[i].Value != vars[i].Value {
				t.Fatalf("re-parse: %+v, want %+v", again[i], vars[i])
			}
		}
	})
}
