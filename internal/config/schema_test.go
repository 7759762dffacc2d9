package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileFunctionSchema compiles config/function.schema.json with a real
// JSON Schema implementation (which checks it against its meta-schema).
func compileFunctionSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("function.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///function.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("file:///function.schema.json")
	if err != nil {
		t.Fatalf("function.schema.json: %v", err)
	}
	return s
}

func schemaValid(t *testing.T, s *jsonschema.Schema, text string) bool {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return s.Validate(v) == nil
}

// The schema names exactly the fields function.json's reader knows.
func TestFunctionSchemaHasEveryField(t *testing.T) {
	raw, _ := os.ReadFile("function.schema.json")
	var doc struct {
		Properties map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tags := func(v any) []string {
		var out []string
		for f := range reflect.TypeOf(v).Fields() {
			out = append(out, strings.Split(f.Tag.Get("json"), ",")[0])
		}
		sort.Strings(out)
		return out
	}
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	var top []string
	for k := range doc.Properties {
		top = append(top, k)
	}
	sort.Strings(top)
	if want := tags(functionFile{}); !slices.Equal(top, want) {
		t.Errorf("schema properties %v\nfunction.json fields %v", top, want)
	}
	if got, want := keys(doc.Properties["breaker"].Properties), tags(breakerFile{}); !slices.Equal(got, want) {
		t.Errorf("schema breaker properties %v, fields %v", got, want)
	}
}

// The schema and the reader agree: what one refuses the other refuses.
// (Not expressible in the schema, and left out: minWorkers above
// maxWorkers, and integers written with a fraction such as 1.0.)
func TestFunctionSchemaAgreesWithTheReader(t *testing.T) {
	s := compileFunctionSchema(t)
	docs := []string{
		`{}`,
		`{"$schema": "../function.schema.json", "auth": false}`,
		`{"unknown": 1}`,
		`{"auth": "no"}`,
		`{"permissions": "strict"}`, `{"permissions": ["--allow-net"]}`, `{"permissions": []}`, `{"permissions": 3}`,
		`{"breaker": {"errorRate": 0.5, "errorWindow": 1, "cooldownMs": 1}}`,
		`{"breaker": {"errorRate": 0}}`, `{"breaker": {"errorRate": 1.5}}`, `{"breaker": {"errorWindow": 0}}`,
		`{"breaker": {"cooldownMs": 0}}`, `{"breaker": {"other": 1}}`,
		`{"maxBodyBytes": 1}`, `{"maxBodyBytes": 0}`,
		`{"timeoutMs": "1s"}`, `{"timeoutMs": 1.5}`, `{"eagerSpawn": 1}`,
		`[]`, `"x"`,
	}
	raw, _ := os.ReadFile("function.schema.json")
	var doc struct {
		Properties map[string]struct {
			Type    any  `json:"type"`
			Minimum *int `json:"minimum"`
		} `json:"properties"`
	}
	json.Unmarshal(raw, &doc)
	for name, p := range doc.Properties {
		if p.Type == "integer" && p.Minimum != nil {
			min := *p.Minimum
			max := min + 1
			if name == "minWorkers" {
				max = 1 // not above the default maxWorkers
			}
			docs = append(docs, `{"`+name+`": `+strconv.Itoa(min)+`}`, `{"`+name+`": `+strconv.Itoa(min-1)+`}`, `{"`+name+`": `+strconv.Itoa(max)+`}`)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "function.json")
	base := DefaultFunctionConfig(Defaults())
	for _, d := range docs {
		os.WriteFile(path, []byte(d), 0o644)
		_, err := LoadFunctionConfig(path, base)
		if valid := schemaValid(t, s, d); valid != (err == nil) {
			t.Errorf("%s: schema valid %v, reader error %v", d, valid, err)
		}
	}
}

// Every function.json in the repository's examples is valid and loads.
func TestExampleFunctionJSONMatchesSchema(t *testing.T) {
	s := compileFunctionSchema(t)
	n := 0
	filepath.WalkDir("../../examples", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "function.json" {
			return err
		}
		n++
		raw, _ := os.ReadFile(path)
		if !schemaValid(t, s, string(raw)) {
			t.Errorf("%s does not match config/function.schema.json", path)
		}
		if _, err := LoadFunctionConfig(path, DefaultFunctionConfig(Defaults())); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return nil
	})
	if n == 0 {
		t.Fatal("no function.json under examples/")
	}
}
