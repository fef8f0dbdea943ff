// Package shadowmap makes the legacy shop's own answers comparable with the
// new contract in the gateway's shadow traffic: it implements
// gateway/shadow's Mapping with the anti-corruption layer's translators, so
// the gateway itself never reads a legacy format.
package shadowmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/apierr"
	"github.com/valyala/fasthttp"
)

// ProductDetail maps the legacy's /shop/productDetail.do?art_nr=X to the
// catalog's /api/v1/products/X, and its <artikel> answer to the contract's
// Product through acl's translator.
type ProductDetail struct {
	// Translator reads legacy dates in the legacy's zone (acl.NewTranslator).
	Translator acl.Translator
}

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
