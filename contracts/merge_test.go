package contracts_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ficus-gw/ficus/contracts"
)

const docA = `openapi: 3.0.3
info: {title: A, version: "1"}
paths:
  /a:
    get:
      tags: [a]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}}
        "404": {$ref: "#/components/responses/NotFound"}
  /a/internal:
    get:
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Secret"}}}}
components:
  responses:
    NotFound: {description: nf, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  schemas:
    Thing: {type: object, properties: {id: {type: string}}}
    Secret: {type: object}
    Error: {type: object, required: [code], properties: {code: {type: string}}}
`

const docB = `openapi: 3.0.3
info: {title: B, version: "1"}
paths:
  /b:
    get:
      tags: [b]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}}
        "404": {$ref: "#/components/responses/NotFound"}
components:
  responses:
    NotFound: {description: nf, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  schemas:
    Thing: {type: object, properties: {id: {type: string}}}
    Error: {type: object, required: [code, requestId], properties: {code: {type: string}, requestId: {type: string}}}
`

func TestMerge(t *testing.T) {
	out, err := contracts.Merge(contracts.Options{Title: "AB", Version: "1",
		Keep: func(_, p string) bool { return !strings.HasSuffix(p, "/internal") }},
		contracts.Source{Name: "A", Doc: []byte(docA)}, contracts.Source{Name: "B", Doc: []byte(docB)})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]any `yaml:"paths"`
		Components struct {
			Schemas   map[string]any `yaml:"schemas"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `yaml:"$ref"`
					} `yaml:"schema"`
				} `yaml:"content"`
			} `yaml:"responses"`
		} `yaml:"components"`
		Tags []struct{ Name string } `yaml:"tags"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Paths["/a/internal"]; ok || len(doc.Paths) != 2 {
		t.Errorf("paths = %v, want /a and /b only", doc.Paths)
	}
	if _, ok := doc.Components.Schemas["Secret"]; ok {
		t.Error("a component reached only from a dropped path was kept")
	}
	// Thing is identical in both: kept once. Error differs: B's is renamed,
	// and B's NotFound, identical in text, must follow it (it means B's Error).
	if _, ok := doc.Components.Schemas["BThing"]; ok {
		t.Error("an identical component was duplicated")
	}
	if _, ok := doc.Components.Schemas["BError"]; !ok {
		t.Fatalf("B's different Error was not kept apart: %v", doc.Components.Schemas)
	}
	if got := doc.Components.Responses["BNotFound"].Content["application/json"].Schema.Ref; got != "#/components/schemas/BError" {
		t.Errorf("B's NotFound refers to %q, want B's Error", got)
	}
	if got := doc.Components.Responses["NotFound"].Content["application/json"].Schema.Ref; got != "#/components/schemas/Error" {
		t.Errorf("A's NotFound refers to %q", got)
	}
	if !strings.Contains(string(out), "#/components/responses/BNotFound") {
		t.Error("path /b does not use B's NotFound")
	}
	if len(doc.Tags) != 2 {
		t.Errorf("tags = %v", doc.Tags)
	}
}

func TestMergeRefusesAPathServedTwice(t *testing.T) {
	_, err := contracts.Merge(contracts.Options{Title: "AA", Version: "1"},
		contracts.Source{Name: "A", Doc: []byte(docA)}, contracts.Source{Name: "A2", Doc: []byte(docA)})
	if err == nil || !strings.Contains(err.Error(), "/a") {
		t.Fatalf("err = %v, want the duplicated path named", err)
	}
}
