package shadowmap_test

import (
	"github.com/ficus-gw/ficus/acl/shadowmap"
	"github.com/ficus-gw/ficus/gateway/shadow"
)

// ProductDetail is a shadow.Mapping (its behaviour is tested through the
// gateway in gateway/shadow's mapping tests).
var _ shadow.Mapping = shadowmap.ProductDetail{}
