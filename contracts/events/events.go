// Package events is the event contract of the new services in machine form:
// asyncapi.yaml (AsyncAPI 3) and the JSON Schemas its messages reference,
// one per event type and schemaVersion, embedded so that tests and
// consumers in Go validate against exactly the published files.
//
// A Validator picks the schema of an envelope by its type and schemaVersion
// and validates the whole envelope, data included. The published schemas are
// open (events may gain fields, readers ignore the ones they do not know);
// NewStrictValidator closes them, for the producers' own tests, so that a
// field a service emits without declaring it is caught as drift.
package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

//go:embed asyncapi.yaml schemas
var files embed.FS

// AsyncAPI returns the AsyncAPI document.
func AsyncAPI() []byte {
	b, err := files.ReadFile("asyncapi.yaml")
	if err != nil {
		panic(err) // embedded: cannot happen in a build that compiled
	}
	return b
}

// FS is the contract as files: asyncapi.yaml and schemas/.
func FS() fs.FS { return files }

// Schema returns an embedded schema file by its path, e.g.
// "schemas/order.created.v2.json".
func Schema(name string) ([]byte, error) { return files.ReadFile(name) }

// Key names one version of one event type.
type Key struct {
	Type    string
	Version int
}

func (k Key) String() string { return k.Type + " v" + strconv.Itoa(k.Version) }

// base is where the schemas are registered with the compiler, so that their
// relative $refs resolve; .invalid is reserved, nothing is fetched from it.
const base = "https://contracts.ficus.invalid/events/"

// ErrUnknownEvent is wrapped by Validate for a type and version the
// AsyncAPI document declares no message for.
var ErrUnknownEvent = errors.New("no such event type and version in asyncapi.yaml")

// Validator validates envelopes against the schemas of asyncapi.yaml.
type Validator struct {
	schemas map[Key]*jsonschema.Schema
}

// NewValidator compiles the published schemas of every message of the
// AsyncAPI document.
func NewValidator() (*Validator, error) { return newValidator(false) }

// NewStrictValidator is NewValidator with every object of the envelope and
// data schemas closed (additionalProperties: false): a field the producer
// sends without declaring it fails. Consumers should use NewValidator.
func NewStrictValidator() (*Validator, error) { return newValidator(true) }

var payloadRef = regexp.MustCompile(`^\./schemas/([a-z][a-z-]*\.[a-z][a-z-]*)\.v([0-9]+)\.json$`)

// Messages lists the event types and versions the AsyncAPI document
// declares, from its components.messages (name and payload $ref).
func Messages() ([]Key, error) { return messages(AsyncAPI()) }

func messages(asyncapi []byte) ([]Key, error) {
	var doc struct {
		AsyncAPI   string `yaml:"asyncapi"`
		Components struct {
			Messages map[string]struct {
				Name    string `yaml:"name"`
				Payload struct {
					Ref string `yaml:"$ref"`
				} `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(asyncapi, &doc); err != nil {
		return nil, fmt.Errorf("asyncapi.yaml: %w", err)
	}
	if !strings.HasPrefix(doc.AsyncAPI, "3.") {
		return nil, fmt.Errorf("asyncapi.yaml: version %q, want 3.x", doc.AsyncAPI)
	}
	var keys []Key
	var errs []error
	for id, m := range doc.Components.Messages {
		g := payloadRef.FindStringSubmatch(m.Payload.Ref)
		if g == nil {
			errs = append(errs, fmt.Errorf("asyncapi.yaml: message %s: payload $ref %q is not ./schemas/<type>.v<N>.json", id, m.Payload.Ref))
			continue
		}
		if g[1] != m.Name {
			errs = append(errs, fmt.Errorf("asyncapi.yaml: message %s is named %q but its payload is %s", id, m.Name, m.Payload.Ref))
			continue
		}
		v, _ := strconv.Atoi(g[2])
		keys = append(keys, Key{Type: g[1], Version: v})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return keys, nil
}

// NewValidatorFS is NewValidator (strict false) or NewStrictValidator
// (strict true) on another copy of the contract, laid out as FS is: for
// example the published baseline in contracts/published/events.
func NewValidatorFS(fsys fs.FS, strict bool) (*Validator, error) { return newValidatorFS(fsys, strict) }

func newValidator(strict bool) (*Validator, error) { return newValidatorFS(files, strict) }

func newValidatorFS(fsys fs.FS, strict bool) (*Validator, error) {
	doc, err := fs.ReadFile(fsys, "asyncapi.yaml")
	if err != nil {
		return nil, err
	}
	keys, err := messages(doc)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	err = fs.WalkDir(fsys, "schemas", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		// Event files compose the envelope with allOf; closing them would
		// refuse the envelope's own fields. The envelope and data files
		// declare every field they allow.
		if strict && (p == "schemas/envelope.json" || strings.HasPrefix(p, "schemas/data/")) {
			closeObjects(doc)
		}
		return c.AddResource(base+p, doc)
	})
	if err != nil {
		return nil, fmt.Errorf("loading event schemas: %w", err)
	}
	v := &Validator{schemas: map[Key]*jsonschema.Schema{}}
	for _, k := range keys {
		sch, err := c.Compile(fmt.Sprintf("%sschemas/%s.v%d.json", base, k.Type, k.Version))
		if err != nil {
			return nil, fmt.Errorf("compiling the schema of %s: %w", k, err)
		}
		v.schemas[k] = sch
	}
	return v, nil
}

// closeObjects sets additionalProperties: false on every schema object
// that lists properties and does not say otherwise.
func closeObjects(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["properties"]; ok {
			if _, set := x["additionalProperties"]; !set {
				x["additionalProperties"] = false
			}
		}
		for _, c := range x {
			closeObjects(c)
		}
	case []any:
		for _, c := range x {
			closeObjects(c)
		}
	}
}

// Keys lists the type and version of every schema the Validator knows.
func (v *Validator) Keys() []Key {
	out := make([]Key, 0, len(v.schemas))
	for k := range v.schemas {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Key) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out
}

// Validate checks one envelope (JSON, as served on the feed or posted to a
// webhook) against the schema of its type and schemaVersion. It returns the
// key it validated against; the error wraps ErrUnknownEvent when there is no
// such schema, and otherwise lists every violation with its JSON pointer.
func (v *Validator) Validate(envelope []byte) (Key, error) {
	var head struct {
		Type          string `json:"type"`
		SchemaVersion int    `json:"schemaVersion"`
	}
	if err := json.Unmarshal(envelope, &head); err != nil {
		return Key{}, fmt.Errorf("envelope is not a JSON object with type and schemaVersion: %w", err)
	}
	k := Key{Type: head.Type, Version: head.SchemaVersion}
	sch, ok := v.schemas[k]
	if !ok {
		return k, fmt.Errorf("%w: %s", ErrUnknownEvent, k)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(envelope))
	if err != nil {
		return k, fmt.Errorf("envelope: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return k, fmt.Errorf("%s: %w", k, err)
	}
	return k, nil
}
