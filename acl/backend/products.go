package backend

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
)

// The deprecation of GET /api/v1/products, as the catalog service announces
// it (RFC 9745 Deprecation, RFC 8594 Sunset).
var (
	listV1DeprecatedAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	listV1SunsetAt     = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
)

func (b *Backend) listProductsV1(c *fiber.Ctx) error {
	items, next, err := b.productPage(c)
	if err != nil {
		return err
	}
	c.Set("Deprecation", "@"+strconv.FormatInt(listV1DeprecatedAt.Unix(), 10))
	c.Set("Sunset", listV1SunsetAt.Format(http.TimeFormat))
	c.Set(fiber.HeaderLink, `</api/v2/products>; rel="successor-version", </openapi.yaml>; rel="deprecation"; type="application/yaml"`)
	return c.JSON(api.Page[acl.Product]{Items: items, NextCursor: next})
}

func (b *Backend) listProductsV2(c *fiber.Ctx) error {
	items, next, err := b.productPage(c)
	if err != nil {
		return err
	}
	out := make([]api.ProductV2, len(items))
	for i, p := range items {
		out[i] = p.V2()
	}
	return c.JSON(api.Page[api.ProductV2]{Items: out, NextCursor: next})
}

// productPage answers a list request from the legacy's catalog export:
// the legacy pages by its own sort order and without change data, the
// contract by SKU, so the (category's) whole export is read, sorted and
// cut. Cursors have the catalog service's format, so a client may switch
// sides between pages.
func (b *Backend) productPage(c *fiber.Ctx) ([]acl.Product, string, error) {
	q, err := api.ParseListQuery(c.Query("limit"), c.Query("cursor"), c.Query("category"))
	if err != nil {
		return nil, "", apierr.Contract(err)
	}
	limit, category, after := q.Limit, q.Category, q.After
	kat := ""
	if category != "" {
		var ok bool
		if kat, ok = acl.CategoryToLegacy(category); !ok {
			return []acl.Product{}, "", nil // the catalog answers an unknown category with an empty page too
		}
	}
	export, err := b.legacy.CatalogExport(ctx(c), kat)
	if err != nil {
		return nil, "", b.legacyError(c, acl.OpProduct, err)
	}
	all := make([]acl.Product, 0, len(export.Artikel))
	for _, a := range export.Artikel {
		p, err := b.tr.Product(a)
		if err != nil {
			return nil, "", b.legacyError(c, acl.OpProduct, err)
		}
		if p.SKU > after {
			all = append(all, p)
		}
	}
	slices.SortFunc(all, func(x, y acl.Product) int { return strings.Compare(x.SKU, y.SKU) })
	var next string
	if len(all) > limit {
		all = all[:limit]
		next = api.EncodeCursor(all[limit-1].SKU, category)
	}
	return all, next, nil
}

func (b *Backend) getProduct(c *fiber.Ctx) error {
	sku := strings.Clone(c.Params("sku"))
	if !api.ValidSKU(sku) || !acl.ValidArtNr(sku) {
		// Not a shape the legacy can hold: no such product, as the
		// catalog would say for any SKU it does not have.
		return apierr.New(apierr.CodeNotFound, "no product with SKU %q", sku)
	}
	a, err := b.legacy.Product(ctx(c), sku)
	if err != nil {
		return b.legacyError(c, acl.OpProduct, err)
	}
	p, err := b.tr.Product(a)
	if err != nil {
		return b.legacyError(c, acl.OpProduct, err)
	}
	c.Set(fiber.HeaderETag, `"`+strconv.FormatInt(p.Version, 10)+`"`)
	return c.JSON(p)
}

// legacyError logs a failed legacy call with the request id and returns the
// contract's error for it.
func (b *Backend) legacyError(c *fiber.Ctx, op acl.Op, err error) error {
	ae := acl.ContractError(op, err)
	b.metrics.legacyError(string(op), ae.Code)
	if apierr.Status(ae.Code) >= http.StatusInternalServerError {
		b.log.Error("legacy call failed", "op", string(op), "err", err, "request_id", apierr.RequestID(c))
	}
	return ae
}
