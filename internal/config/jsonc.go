package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// stripJSONC turns JSON with comments (deno.jsonc, and deno.json, which
// Deno reads the same way) into plain JSON: // and /* */ comments and
// trailing commas become spaces. Every other byte, newlines included,
// keeps its offset, so a syntax error still points at the right line.
func stripJSONC(data []byte) []byte {
	out := bytes.Clone(data)
	comma := -1 // offset of a comma that may turn out to be trailing
	for i := 0; i < len(out); i++ {
		switch c := out[i]; {
		case c == '"':
			comma = -1
			for i++; i < len(out) && out[i] != '"'; i++ {
				if out[i] == '\\' {
					i++
				}
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			end := bytes.Index(out[i+2:], []byte("*/"))
			stop := len(out)
			if end >= 0 {
				stop = i + 2 + end + 2
			}
			for ; i < stop; i++ {
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
			i--
		case c == ',':
			comma = i
		case c == '}' || c == ']':
			if comma >= 0 {
				out[comma] = ' '
			}
			comma = -1
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			comma = -1
		}
	}
	return out
}

// decodeJSONC decodes a JSON-with-comments object into v; errors say
// where (line:column) the text is malformed.
func decodeJSONC(data []byte, v any) error {
	plain := stripJSONC(data)
	dec := json.NewDecoder(bytes.NewReader(plain))
	if err := dec.Decode(v); err != nil {
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return fmt.Errorf("want a JSON object, got a JSON %s", typeErr.Value)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("invalid JSON: unexpected end of file")
		case errors.As(err, &syntaxErr):
			// Offset counts the bytes read, the bad one included.
			line, col := lineCol(data, max(syntaxErr.Offset-1, 0))
			return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, syntaxErr)
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: unexpected data after the top-level value")
	}
	return nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, offset int64) (int, int) {
	offset = min(offset, int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
