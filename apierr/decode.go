package apierr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"
)

// DecodeOptions bound what DecodeJSON accepts.
type DecodeOptions struct {
	// MaxBytes: larger bodies are 413 PAYLOAD_TOO_LARGE. Zero: no cap here
	// (the server's own body limit still applies).
	MaxBytes int
	// MaxDepth: deeper nesting of objects and arrays is 400. Zero means 16.
	MaxDepth int
	// Required: an empty body is 400; otherwise it leaves v untouched.
	Required bool
}

// DecodeJSON strictly decodes a request body into v, the way every write
// of the new contract reads its input: size cap, JSON media type, nesting
// cap, no unknown fields, exactly one value. Every failure is an *Error
// whose details name the offending field when there is one.
func DecodeJSON(body []byte, contentType string, o DecodeOptions, v any) error {
	if o.MaxBytes > 0 && len(body) > o.MaxBytes {
		return New(CodeTooLarge, "request body exceeds %d bytes", o.MaxBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if o.Required {
			return New(CodeMalformed, "a JSON request body is required")
		}
		return nil
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return New(CodeUnsupportedMedia, "send Content-Type: application/json")
	}
	maxDepth := o.MaxDepth
	if maxDepth <= 0 {
		maxDepth = 16
	}
	if JSONDepth(body) > maxDepth {
		return New(CodeMalformed, "JSON nested deeper than %d levels", maxDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return New(CodeMalformed, "unexpected data after the JSON value")
	}
	return nil
}

// decodeError turns encoding/json's errors into structured ones naming the
// field. encoding/json has no typed error for unknown fields; its message
// prefix has been stable since Go 1.10.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return New(CodeMalformed, "invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return New(CodeMalformed, "%s must be of type %s, not %s", field, jsonType(typ.Type.Kind().String()), typ.Value).
			WithDetails(map[string]string{"field": field})
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return New(CodeMalformed, "truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return New(CodeMalformed, "unknown field %q", name).WithDetails(map[string]string{"field": name})
	}
	return New(CodeMalformed, "invalid JSON body")
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint32", "uint64", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return kind
}

// JSONDepth returns the deepest nesting of objects and arrays in a JSON
// text, ignoring brackets inside strings, without allocating.
func JSONDepth(b []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, ch := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
		case ch == '"':
			inString = true
		case ch == '{' || ch == '[':
			d++
			deepest = max(deepest, d)
		case ch == '}' || ch == ']':
			d--
		}
	}
	return deepest
}
