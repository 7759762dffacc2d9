package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FunctionSchema is function.json's JSON Schema (function.schema.json),
// the one `edgeway check` validates with and editors read through
// "$schema".
//
//go:embed function.schema.json
var FunctionSchema []byte

const functionSchemaURL = "file:///function.schema.json"

var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(FunctionSchema))
	if err != nil {
		return nil, fmt.Errorf("function.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(functionSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("function.schema.json: %w", err)
	}
	return c.Compile(functionSchemaURL)
})

// SchemaProblem is one way a function.json breaks the schema: the field
// (dotted path, "" for the object itself) and what is wrong with it.
type SchemaProblem struct {
	Field, Message string
}

func (p SchemaProblem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// CheckFunctionJSON validates a function.json's content against the
// schema and returns every problem found (none: valid).
func CheckFunctionJSON(data []byte) ([]SchemaProblem, error) {
	s, err := compiledSchema()
	if err != nil {
		return nil, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []SchemaProblem{{Message: "not valid JSON: " + err.Error()}}, nil
	}
	var ve *jsonschema.ValidationError
	if err := s.Validate(v); !errors.As(err, &ve) {
		return nil, err
	}
	var out []SchemaProblem
	for _, u := range ve.BasicOutput().Errors {
		// Wrappers ("validation failed") and the alternatives of a oneOf,
		// which its own "none matched" sums up, say nothing more.
		if u.Error == nil || strings.Contains(u.KeywordLocation, "/oneOf/") {
			continue
		}
		msg := u.Error.String()
		if msg == "validation failed" {
			continue
		}
		field := strings.ReplaceAll(strings.TrimPrefix(u.InstanceLocation, "/"), "/", ".")
		out = append(out, SchemaProblem{Field: field, Message: msg})
	}
	if len(out) == 0 { // never seen: keep the library's own words
		out = append(out, SchemaProblem{Message: ve.Error()})
	}
	return out, nil
}

// CheckFunctionFiles validates the function.json of every function folder
// under root (the folders Discover reads: not "_shared" and the like) and
// returns one line per problem, "<file>: <field>: <problem>".
func CheckFunctionFiles(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("functions folder %s: %w", root, err)
	}
	var lines []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "_") || !ValidName(name) || !isDir(filepath.Join(root, name)) {
			continue
		}
		path := filepath.Join(root, name, "function.json")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		problems, err := CheckFunctionJSON(data)
		if err != nil {
			return nil, err
		}
		for _, p := range problems {
			lines = append(lines, path+": "+p.String())
		}
	}
	return lines, nil
}
