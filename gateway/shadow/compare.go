package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/wI2L/jsondiff"
)

// Field names that are not JSON pointers into the body.
const (
	// FieldStatus is the HTTP status code.
	FieldStatus = "status"
	// FieldBody is a body that is not JSON on at least one side and whose
	// bytes differ.
	FieldBody = "body"
	// FieldOther collects the fields of a route beyond its first
	// maxFieldsPerRoute distinct ones, keeping metric cardinality bounded.
	FieldOther = "other"
	// headerFieldPrefix prefixes a compared header's canonical name.
	headerFieldPrefix = "header:"
)

// maxValueChars bounds the text of one value kept in a Difference.
const maxValueChars = 200

// answer is one side's response in the new contract's terms: what is
// compared.
type answer struct {
	status  int
	headers map[string]string // canonical name -> value, only compared ones
	body    []byte            // normalised body (contract JSON when isJSON)
}

// Difference is one field that differs between the primary and the shadow
// answer.
type Difference struct {
	// Field is the normalised pattern: a JSON pointer with array indices
	// (and keyed-array keys) as "*", or "status", "header:<Name>", "body".
	Field string `json:"field"`
	// Path is the concrete JSON pointer (equal to Field outside the body).
	Path string `json:"path"`
	// Op is the JSON Patch operation turning the primary into the shadow
	// answer: "add", "remove" or "replace".
	Op string `json:"op"`
	// Primary and Shadow are the values on each side (JSON text, shortened).
	Primary string `json:"primary,omitempty"`
	Shadow  string `json:"shadow,omitempty"`
}

// ignoreRule is a config.IgnoreRule with its path split and its expiry
// resolved to an instant.
type ignoreRule struct {
	config.IgnoreRule
	segs  []string
	until time.Time // first instant the rule no longer applies
}

// comparer holds one route's comparison settings.
type comparer struct {
	headers   []string          // canonical names
	arrayKeys map[string]string // array pattern -> key field
	rules     []ignoreRule
}

func newComparer(c config.Compare) (*comparer, error) {
	cm := &comparer{arrayKeys: c.ArrayKeys}
	for _, h := range c.Headers {
		cm.headers = append(cm.headers, http.CanonicalHeaderKey(h))
	}
	for _, r := range c.Ignore {
		day, err := time.Parse(time.DateOnly, r.Expires)
		if err != nil {
			return nil, fmt.Errorf("ignore rule %s: expires %q: %w", r.Path, r.Expires, err)
		}
		cm.rules = append(cm.rules, ignoreRule{IgnoreRule: r, segs: splitPointer(r.Path), until: day.AddDate(0, 0, 1)})
	}
	return cm, nil
}

// expired returns the rules that no longer apply at now.
func (cm *comparer) expired(now time.Time) []config.IgnoreRule {
	var out []config.IgnoreRule
	for _, r := range cm.rules {
		if !now.Before(r.until) {
			out = append(out, r.IgnoreRule)
		}
	}
	return out
}

// errRateLimited: one side answered 429 Too Many Requests. A refusal to
// serve says nothing about what the side would have answered, so the pair
// is not comparable (ResultSkipped): counting it as a status difference
// would report a rate limit as a REAL migration difference.
var errRateLimited = errors.New("an answer was 429 Too Many Requests: not comparable")

// comparable returns errRateLimited when either status is 429, else nil.
func comparable(primaryStatus, shadowStatus int) error {
	if primaryStatus == http.StatusTooManyRequests || shadowStatus == http.StatusTooManyRequests {
		return errRateLimited
	}
	return nil
}

// compare returns every difference between the primary answer a and the
// shadow answer b, after the ignore rules still in force at now.
func (cm *comparer) compare(now time.Time, a, b answer) []Difference {
	var out []Difference
	if a.status != b.status {
		out = append(out, Difference{Field: FieldStatus, Path: FieldStatus, Op: "replace",
			Primary: strconv.Itoa(a.status), Shadow: strconv.Itoa(b.status)})
	}
	for _, h := range cm.headers {
		va, vb := a.headers[h], b.headers[h]
		if h == "Content-Type" {
			va, vb = mediaType(va), mediaType(vb)
		}
		if va != vb {
			f := headerFieldPrefix + h
			out = append(out, Difference{Field: f, Path: f, Op: "replace", Primary: va, Shadow: vb})
		}
	}
	return append(out, cm.compareBodies(now, a, b)...)
}

func (cm *comparer) compareBodies(now time.Time, a, b answer) []Difference {
	if bytes.Equal(a.body, b.body) {
		return nil
	}
	va, okA := cm.prepare(a)
	vb, okB := cm.prepare(b)
	if !okA || !okB {
		return []Difference{{Field: FieldBody, Path: FieldBody, Op: "replace",
			Primary: shorten(string(a.body)), Shadow: shorten(string(b.body))}}
	}
	patch, err := jsondiff.CompareWithoutMarshal(va, vb)
	if err != nil { // cannot happen for json.Unmarshal output; compare as bytes
		return []Difference{{Field: FieldBody, Path: FieldBody, Op: "replace"}}
	}
	var out []Difference
	for _, op := range patch {
		segs := splitPointer(op.Path)
		if cm.ignored(now, segs) {
			continue
		}
		doc := va
		if op.Type == jsondiff.OperationAdd {
			doc = vb
		}
		out = append(out, Difference{
			Field: cm.pattern(doc, segs), Path: pointerOrRoot(op.Path), Op: op.Type,
			Primary: jsonText(op.OldValue, op.Type != jsondiff.OperationAdd),
			Shadow:  jsonText(op.Value, op.Type != jsondiff.OperationRemove),
		})
	}
	return out
}

// prepare decodes a JSON body into comparable values: arrays named in
// ArrayKeys become objects keyed by their key field (so elements match by
// key, not position), and error answers (status >= 400) keep only their
// machine-readable "code": messages are for humans and differ in wording.
func (cm *comparer) prepare(a answer) (any, bool) {
	if len(bytes.TrimSpace(a.body)) == 0 {
		return nil, true
	}
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		return nil, false
	}
	if a.status >= 400 {
		if m, ok := v.(map[string]any); ok {
			if code, ok := m["code"]; ok {
				return map[string]any{"code": code}, true
			}
		}
	}
	if len(cm.arrayKeys) > 0 {
		v = cm.keyArrays(v, nil)
	}
	return v, true
}

// keyArrays rewrites, below v at pattern segments pat, every array whose
// pattern has a configured key into an object keyed by that field. An
// element without the key (or with a duplicate) keeps a positional key
// "#<index>" so nothing is lost.
func (cm *comparer) keyArrays(v any, pat []string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = cm.keyArrays(e, append(pat, k))
		}
		return t
	case []any:
		key, keyed := cm.arrayKeys[joinPointer(pat)]
		for i, e := range t {
			t[i] = cm.keyArrays(e, append(pat, "*"))
		}
		if !keyed {
			return t
		}
		m := make(map[string]any, len(t))
		for i, e := range t {
			k := "#" + strconv.Itoa(i)
			if obj, ok := e.(map[string]any); ok {
				if kv, ok := obj[key]; ok {
					if s := scalarText(kv); s != "" {
						if _, dup := m[s]; !dup {
							k = s
						}
					}
				}
			}
			m[k] = e
		}
		return m
	}
	return v
}

// ignored reports whether a rule in force at now covers the pointer segs
// (the rule's field itself or anything below it).
func (cm *comparer) ignored(now time.Time, segs []string) bool {
	for _, r := range cm.rules {
		if !now.Before(r.until) || len(segs) < len(r.segs) {
			continue
		}
		match := true
		for i, s := range r.segs {
			if s != "*" && s != segs[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// pattern turns the concrete pointer segs into its field pattern by walking
// doc: an array index, or the key of a keyed array, becomes "*". So
// /items/3/price and /items/7/price are one field, and the metric's field
// label stays bounded by the shape of the contract, not by the data.
func (cm *comparer) pattern(doc any, segs []string) string {
	if len(segs) == 0 {
		return "/"
	}
	pat := make([]string, 0, len(segs))
	cur := doc
	for _, s := range segs {
		switch t := cur.(type) {
		case []any:
			pat = append(pat, "*")
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(t) {
				cur = nil
			} else {
				cur = t[i]
			}
		case map[string]any:
			if _, keyed := cm.arrayKeys[joinPointer(pat)]; keyed {
				pat = append(pat, "*")
			} else {
				pat = append(pat, s)
			}
			cur = t[s]
		default:
			// Below a value the doc does not have (an added subtree):
			// numbers are positions, names are names.
			if _, err := strconv.Atoi(s); err == nil {
				s = "*"
			}
			pat = append(pat, s)
			cur = nil
		}
	}
	return joinPointer(pat)
}

// splitPointer splits an RFC 6901 JSON pointer into unescaped segments.
func splitPointer(p string) []string {
	if p == "" || p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		if strings.Contains(s, "~") {
			parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
		}
	}
	return parts
}

// joinPointer is splitPointer's inverse ("" for the root).
func joinPointer(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(s))
	}
	return b.String()
}

func pointerOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// mediaType reduces a Content-Type to its lower-case media type: a charset
// parameter or its spelling is not a difference in the contract.
func mediaType(v string) string {
	if v == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(v))
	}
	return mt
}

func scalarText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	}
	return ""
}

func jsonText(v any, present bool) string {
	if !present {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return shorten(string(b))
}

func shorten(s string) string {
	if len(s) <= maxValueChars {
		return s
	}
	return s[:maxValueChars] + "…"
}
