// Package contracts holds what the providers of the Ficus API share about
// their contract. Merge builds one OpenAPI document from the services' own
// documents, for a provider that serves several of them behind one address
// (the ACL backend serves catalog and order paths, as the gateway does).
//
// The service documents stay the source of truth: the gate in
// contracts/check.sh compares each with its published baseline, so a merged
// document is right whenever its sources are.
package contracts

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is one service's OpenAPI document.
type Source struct {
	// Name prefixes this source's components when one of them has the
	// name of a different component from an earlier source, e.g. "Order"
	// turns a second, different "Error" into "OrderError".
	Name string
	// Doc is the OpenAPI 3.0 document (YAML or JSON).
	Doc []byte
}

// Options shape the merged document.
type Options struct {
	// Title and Version become info.title and info.version. Required.
	Title, Version string
	// Description becomes info.description; empty means none.
	Description string
	// Servers become the document's servers (URLs); empty means none.
	Servers []string
	// Keep selects the paths of the merged document by source name and
	// path; nil keeps every path. Components that no kept path reaches are
	// dropped.
	Keep func(source, path string) bool
}

// componentSections are the sections of components that Merge carries over.
var componentSections = []string{"schemas", "parameters", "headers", "responses", "requestBodies", "examples"}

// Merge returns one OpenAPI document holding the kept paths of every source
// and the components they reach. A path served by two sources is an error;
// two different components with one name are kept apart by renaming the
// later one (Source.Name + name) and rewriting its references.
func Merge(opt Options, srcs ...Source) ([]byte, error) {
	if opt.Title == "" || opt.Version == "" {
		return nil, errors.New("contracts: Merge needs a title and a version")
	}
	out := map[string]any{
		"openapi": "",
		"info":    map[string]any{"title": opt.Title, "version": opt.Version},
		"paths":   map[string]any{},
	}
	if opt.Description != "" {
		out["info"].(map[string]any)["description"] = opt.Description
	}
	for _, u := range opt.Servers {
		list, _ := out["servers"].([]any)
		out["servers"] = append(list, map[string]any{"url": u})
	}
	outPaths := out["paths"].(map[string]any)
	outComps := map[string]map[string]any{}
	tags := map[string]bool{}
	for _, src := range srcs {
		var doc map[string]any
		if err := yaml.Unmarshal(src.Doc, &doc); err != nil {
			return nil, fmt.Errorf("contracts: %s: %w", src.Name, err)
		}
		if v, _ := doc["openapi"].(string); out["openapi"] == "" {
			out["openapi"] = v
		} else if v != out["openapi"] {
			return nil, fmt.Errorf("contracts: %s is OpenAPI %s, others %s", src.Name, v, out["openapi"])
		}
		paths, _ := doc["paths"].(map[string]any)
		kept := map[string]any{}
		for p, item := range paths {
			if opt.Keep == nil || opt.Keep(src.Name, p) {
				kept[p] = item
			}
		}
		comps, _ := doc["components"].(map[string]any)
		reached := reachable(kept, comps)
		// Rename this source's components that collide with different ones.
		// A component is renamed when an earlier source has a different one
		// of that name, or when it refers to a renamed one (the same text
		// then means something else); repeat until nothing changes.
		renames := map[string]string{}
		for changed := true; changed; {
			changed = false
			for ref := range reached {
				if _, done := renames[ref]; done {
					continue
				}
				section, name := splitRef(ref)
				have, ok := outComps[section][name]
				if !ok {
					continue
				}
				c := component(comps, section, name)
				if !reflect.DeepEqual(have, c) || refersTo(c, comps, renames) {
					renames[ref] = "#/components/" + section + "/" + src.Name + name
					changed = true
				}
			}
		}
		kept = rewriteRefs(kept, renames).(map[string]any)
		for p, item := range kept {
			if _, dup := outPaths[p]; dup {
				return nil, fmt.Errorf("contracts: path %s is in more than one source (%s)", p, src.Name)
			}
			outPaths[p] = item
			for _, op := range asMap(item) {
				for _, t := range asSlice(asMap(op)["tags"]) {
					if s, ok := t.(string); ok {
						tags[s] = true
					}
				}
			}
		}
		for ref := range reached {
			section, name := splitRef(ref)
			if to, ok := renames[ref]; ok {
				_, name = splitRef(to)
			}
			if outComps[section] == nil {
				outComps[section] = map[string]any{}
			}
			outComps[section][name] = rewriteRefs(component(comps, section, name0(ref)), renames)
		}
	}
	if len(outComps) > 0 {
		c := map[string]any{}
		for s, m := range outComps {
			c[s] = m
		}
		out["components"] = c
	}
	if len(tags) > 0 {
		names := make([]string, 0, len(tags))
		for t := range tags {
			names = append(names, t)
		}
		sort.Strings(names)
		list := make([]any, len(names))
		for i, n := range names {
			list[i] = map[string]any{"name": n}
		}
		out["tags"] = list
	}
	return yaml.Marshal(out)
}

// refersTo reports whether v refers, directly or through other components,
// to one of the refs in set.
func refersTo(v any, comps map[string]any, set map[string]string) bool {
	for ref := range reachable(v, comps) {
		if _, ok := set[ref]; ok {
			return true
		}
	}
	return false
}

func name0(ref string) string { _, n := splitRef(ref); return n }

// splitRef splits "#/components/schemas/Error" into "schemas", "Error".
func splitRef(ref string) (section, name string) {
	rest := strings.TrimPrefix(ref, "#/components/")
	section, name, _ = strings.Cut(rest, "/")
	return section, name
}

func component(comps map[string]any, section, name string) any {
	return asMap(comps[section])[name]
}

// reachable returns every local component reference reached from v,
// following references through the components themselves.
func reachable(v any, comps map[string]any) map[string]bool {
	seen := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok && strings.HasPrefix(ref, "#/components/") && !seen[ref] {
				section, name := splitRef(ref)
				if isSection(section) {
					seen[ref] = true
					walk(component(comps, section, name))
				}
			}
			for _, c := range t {
				walk(c)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(v)
	return seen
}

func isSection(s string) bool {
	for _, c := range componentSections {
		if c == s {
			return true
		}
	}
	return false
}

// rewriteRefs returns a copy of v whose $refs are renamed by renames.
func rewriteRefs(v any, renames map[string]string) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, x := range t {
			if s, ok := x.(string); ok && k == "$ref" {
				if to, ok := renames[s]; ok {
					c[k] = to
					continue
				}
			}
			c[k] = rewriteRefs(x, renames)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, x := range t {
			c[i] = rewriteRefs(x, renames)
		}
		return c
	}
	return v
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asSlice(v any) []any        { s, _ := v.([]any); return s }
