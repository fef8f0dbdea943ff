package retire

import "github.com/valyala/fasthttp"

func newRequestCtx(ua string) *fasthttp.RequestCtx {
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetUserAgent(ua)
	return &rc
}
