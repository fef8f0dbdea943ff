package backend

import (
	"strings"

	"github.com/ficus-gw/ficus/contracts"
)

// servedPaths are the paths of the services' contracts that the backend
// serves (catalog writes among them, answered 405: the legacy catalog is
// read-only). The event feeds, reservation listing and internal endpoints
// belong to the new services alone.
var servedPaths = map[string]bool{
	"/openapi.yaml":                                  true,
	"/api/v1/products":                               true,
	"/api/v2/products":                               true,
	"/api/v1/products/{sku}":                         true,
	"/api/v1/products/{sku}/stock-adjustments":       true,
	"/api/v1/stock-reservations/{reference}/release": true,
}

// PublicContract is the OpenAPI document the backend serves at
// /openapi.yaml: the catalog's and the order service's own documents (the
// published contract, see contracts/published), restricted to the paths
// served here. It is built from the same bytes the services serve
// (catalogDoc and orderDoc, passed in through Config), so the two sides
// cannot drift apart.
func PublicContract(catalogDoc, orderDoc []byte) ([]byte, error) {
	return contracts.Merge(contracts.Options{
		Title:   "Ficus API (served from the legacy by the ACL backend)",
		Version: "1",
		Servers: []string{"http://" + DefaultAddr},
		Description: "The Catalog and Order contracts as the ACL backend serves them: the same JSON, " +
			"statuses and error codes as the new services. Catalog writes answer 405 here " +
			"(the legacy catalog is read-only); see docs/contracts.md.",
		Keep: func(src, p string) bool {
			if src == "Catalog" {
				return servedPaths[p]
			}
			return strings.HasPrefix(p, "/api/v1/orders")
		},
	},
		contracts.Source{Name: "Catalog", Doc: catalogDoc},
		contracts.Source{Name: "Order", Doc: orderDoc},
	)
}
