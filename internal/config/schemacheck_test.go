package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCheckFunctionJSONNamesTheField(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want []SchemaProblem
	}{
		{`{"maxWorkers": 2, "auth": false}`, nil},
		{`{"maxWorkers": 0}`, []SchemaProblem{{"maxWorkers", "minimum: got 0, want 1"}}},
		{`{"breaker": {"errorRate": 2}}`, []SchemaProblem{{"breaker.errorRate", "maximum: got 2, want 1"}}},
		{`{"bogus": 1}`, []SchemaProblem{{"", "additional properties 'bogus' not allowed"}}},
		{`{"timeoutMs": "1s"}`, []SchemaProblem{{"timeoutMs", "got string, want integer"}}},
		{`{"permissions": 3}`, []SchemaProblem{{"permissions", "'oneOf' failed, none matched"}}},
		{`{"maxWorkers": 1`, []SchemaProblem{{"", "not valid JSON: unexpected EOF"}}},
	} {
		got, err := CheckFunctionJSON([]byte(c.doc))
		if err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.doc, got, c.want)
		}
	}
}

// Every function folder's function.json is checked, each problem named
// with its file; _shared and folders that are not functions are not.
func TestCheckFunctionFiles(t *testing.T) {
	root := t.TempDir()
	for path, content := range map[string]string{
		"a/function.json":       `{"maxWorkers": 0, "eagerSpawn": 1}`,
		"b/function.json":       `{"auth": false}`,
		"c/index.ts":            ``,
		"_shared/function.json": `{"not": "a function"}`,
		"d/function.json":       `[]`,
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755)
		os.WriteFile(filepath.Join(root, path), []byte(content), 0o644)
	}
	got, err := CheckFunctionFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	a, d := filepath.Join(root, "a", "function.json"), filepath.Join(root, "d", "function.json")
	want := []string{
		a + ": maxWorkers: minimum: got 0, want 1",
		a + ": eagerSpawn: got number, want boolean",
		d + ": got array, want object",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("problems\n%q\nwant\n%q", got, want)
	}
	if _, err := CheckFunctionFiles(filepath.Join(root, "missing")); err == nil {
		t.Fatal("a missing folder is not an error")
	}
}

// The embedded schema compiles (a broken one would fail every check).
func TestEmbeddedFunctionSchemaCompiles(t *testing.T) {
	if _, err := compiledSchema(); err != nil {
		t.Fatal(err)
	}
}
