package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Parse decodes a config.json and validates everything that can be checked
// without looking at the filesystem. source prefixes every error, so it
// should be what the user knows the data as, e.g. "config.json" or its path.
func Parse(data []byte, source string) (*specs.Spec, error) {
	spec, err := decode[specs.Spec](data, "configuration")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := validateSpec(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return spec, nil
}

// LoadProcess reads and validates the process.json given to "exec -p". Its
// fields are at the top level of the file, so errors name them without a
// "process." prefix, e.g. "/tmp/p.json: cwd: required field missing".
func LoadProcess(path string) (*specs.Process, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	p, err := decode[specs.Process](data, "process")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := ValidateProcess(p, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// decode unmarshals a single JSON value into a new T. Unknown fields are
// accepted: the runtime spec allows extensions, and runc ignores them too.
// Unlike runc's json.Decoder, trailing data after the value is an error; a
// file holding two documents is broken, and silently using the first would
// hide that.
func decode[T any](data []byte, what string) (*T, error) {
	if len(bytes.Trim(data, " \t\r\n")) == 0 {
		return nil, fmt.Errorf("empty %s", what)
	}
	var v *T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, describeJSONError(data, err)
	}
	if v == nil { // the document was a literal null
		return nil, fmt.Errorf("empty %s", what)
	}
	return v, nil
}

// describeJSONError turns the decoder's errors into ones that point at the
// problem: a line and column for syntax errors, a field path for type errors.
func describeJSONError(data []byte, err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		line, col := position(data, syntaxErr)
		return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		got := typeErr.Value
		if got == "bool" {
			got = "boolean"
		}
		msg := fmt.Sprintf("expected %s, got %s", jsonTypeName(typeErr.Type), got)
		if typeErr.Field != "" {
			// Field is the dotted path of JSON names from the top level,
			// e.g. "process.user.uid". Array indexes are not included.
			msg = typeErr.Field + ": " + msg
		}
		return &causeError{msg: msg, cause: err}
	}
	return err
}

// position converts a syntax error's byte offset into a 1-based line and
// column (counted in characters), which is what editors show.
func position(data []byte, e *json.SyntaxError) (line, col int) {
	// Offset counts the bytes consumed when the error was noticed, so the
	// offending byte is the last one consumed. A truncated document has no
	// offending byte and is reported just past its end.
	pos := min(int(e.Offset), len(data))
	truncated := strings.HasPrefix(e.Error(), "unexpected end of JSON input")
	if pos > 0 && !truncated {
		pos--
	}
	before := data[:pos]
	line = 1 + bytes.Count(before, []byte{'\n'})
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	col = 1 + utf8.RuneCount(before[lineStart:])
	return line, col
}

// jsonTypeName describes a Go type in JSON terms, for "expected X" messages.
func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("%d-bit integer", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// Saying "unsigned" explains the common mistake of a -1 uid.
		return fmt.Sprintf("unsigned %d-bit integer", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array of " + jsonTypeName(t.Elem())
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Interface:
		return "any JSON value"
	}
	return t.String()
}
