package shadow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/newsvc/apierr"
	"github.com/valyala/fasthttp"
)

// Mapping lets a route whose one side is a "legacy"-kind upstream (the
// monolith's own URLs and XML) be compared with a side speaking the new
// contract. It is keyed by route name (Options.Mappings). Routes between
// "acl" and "new" upstreams need none: both already speak the contract.
//
// A Mapping is called on shadow workers only, never on the primary path, and
// concurrently: it must be safe for concurrent use.
type Mapping interface {
	// ToNew rewrites req, a copy of a request for the legacy, in place into
	// the new contract's request asking the same thing. It returns false
	// when the request has no counterpart (the exchange is skipped).
	ToNew(req *fasthttp.Request) bool
	// ToLegacy is ToNew's reverse, for routes served by the new side and
	// shadowed to the legacy.
	ToLegacy(req *fasthttp.Request) bool
	// Normalise turns a legacy answer into the new contract's status and
	// JSON body. An error means the legacy answer could not be read in the
	// contract's terms; the exchange counts as an error.
	Normalise(status int, body []byte) (int, []byte, error)
}

// ProductDetail maps the legacy's /shop/productDetail.do?art_nr=X to the
// catalog's /api/v1/products/X, and its <artikel> answer to the contract's
// Product through acl's translator.
type ProductDetail struct {
	// Translator reads legacy dates in the legacy's zone (acl.NewTranslator).
	Translator acl.Translator
}

var _ Mapping = ProductDetail{}

const (
	legacyProductPath = "/shop/productDetail.do"
	newProductPrefix  = "/api/v1/products/"
)

// ToNew implements Mapping.
func (ProductDetail) ToNew(req *fasthttp.Request) bool {
	uri := req.URI()
	if string(uri.Path()) != legacyProductPath {
		return false
	}
	art := string(uri.QueryArgs().Peek("art_nr"))
	if art == "" {
		return false
	}
	uri.SetPath(newProductPrefix + url.PathEscape(art))
	uri.SetQueryString("")
	return true
}

// ToLegacy implements Mapping.
func (ProductDetail) ToLegacy(req *fasthttp.Request) bool {
	uri := req.URI()
	sku, ok := strings.CutPrefix(string(uri.Path()), newProductPrefix)
	if !ok || sku == "" || strings.Contains(sku, "/") {
		return false
	}
	uri.SetPath(legacyProductPath)
	uri.SetQueryString("art_nr=" + url.QueryEscape(sku))
	return true
}

// Normalise implements Mapping. The legacy answers business errors as 200
// with an <error> document; they become the contract's status and code.
func (p ProductDetail) Normalise(status int, body []byte) (int, []byte, error) {
	if status != fasthttp.StatusOK {
		return status, errorBody(apierr.CodeInternal), nil
	}
	var a acl.Artikel
	err := acl.DecodeBytes(body, &a)
	var le *acl.LegacyError
	switch {
	case errors.As(err, &le):
		code := apierr.CodeInternal
		switch le.Code {
		case acl.CodeUnknownArticle:
			code = apierr.CodeNotFound
		case acl.CodeBadInput:
			code = apierr.CodeValidation
		}
		return apierr.Status(code), errorBody(code), nil
	case err != nil:
		return 0, nil, fmt.Errorf("reading legacy product: %w", err)
	}
	prod, err := p.Translator.Product(a)
	if err != nil {
		return 0, nil, fmt.Errorf("translating legacy product: %w", err)
	}
	b, err := json.Marshal(prod)
	if err != nil {
		return 0, nil, fmt.Errorf("encoding product: %w", err)
	}
	return fasthttp.StatusOK, b, nil
}

// errorBody is a contract error reduced to what comparison looks at.
func errorBody(code string) []byte {
	b, _ := json.Marshal(map[string]string{"code": code})
	return b
}
