package httpapi

import (
	"bytes"
	"io"
	"mime"
	"net/url"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"
)

// bufPool recycles request body buffers; bodies are small and bounded.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps a rare large body from pinning memory in the pool.
const maxPooledBuf = 64 << 10

// bodyDecoder reads JSON request bodies of at most limit bytes.
type bodyDecoder struct{ limit int64 }

// decode reads the request body into dst, a pointer to a struct. It
// requires Content-Type application/json, exactly one JSON object, no
// unknown fields and no trailing data.
func (d bodyDecoder) decode(c echo.Context, dst any) error {
	return d.read(c, func(b []byte) error { return decodeObject(b, dst, "") })
}

// read checks the media type, reads the bounded body into a pooled buffer
// and hands it to parse; the bytes are only valid during the call.
func (d bodyDecoder) read(c echo.Context, parse func([]byte) error) error {
	req := c.Request()
	if !isJSON(req.Header.Get(echo.HeaderContentType)) {
		return errUnsupportedMedia
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			bufPool.Put(buf)
		}
	}()
	limit := d.limit
	n, err := buf.ReadFrom(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return jsonError(err, "")
	}
	if n > limit {
		return errBodyTooLarge(limit)
	}
	return parse(buf.Bytes())
}

// decodeObject decodes one JSON object from b into dst under the strict
// rules of strictjson.go (exact keys, no unknown or duplicate keys, valid
// UTF-8, no trailing data); prefix names the enclosing field in error
// messages.
func decodeObject(b []byte, dst any, prefix string) error {
	first := firstByte(b)
	switch {
	case first == 0 && prefix == "":
		return errEmptyBody
	case first != '{':
		if prefix != "" {
			return badRequest("invalid_field", prefix, "field %q must be an object", prefix)
		}
		if jsontext.Value(b).IsValid() {
			return errNotObject
		}
		return badRequest("invalid_json", "", "the request body is not valid JSON")
	}
	if err := strictUnmarshal(b, dst); err != nil {
		return strictError(b, err, prefix)
	}
	return nil
}

// firstByte returns the first non-whitespace byte of b, 0 if none.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// isJSON accepts application/json with or without parameters.
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// Limits on path values, checked before anything touches the store.
const (
	maxRefLen       = 128
	maxPrincipalLen = 300
)

// pathParam returns a path parameter, percent-decoded (the router matches
// the raw path, so "user%3A3" arrives encoded).
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if strings.IndexByte(v, '%') < 0 {
		return v, nil
	}
	out, err := url.PathUnescape(v)
	if err != nil {
		return "", badRequest("invalid_"+name, name, "path parameter %s is not validly percent-encoded", name)
	}
	return out, nil
}

// agentParam is the {agent} path value: a slug or a canonical id,
// validated further by the service.
func agentParam(c echo.Context) (string, error) {
	return idRefParam(c, "agent")
}

// userParam is the {user} path value: a login or a canonical id.
func userParam(c echo.Context) (string, error) {
	return idRefParam(c, "user")
}

// idRefParam reads a path value that names a record by name or by id.
func idRefParam(c echo.Context, name string) (string, error) {
	v, err := refParam(c, name, maxRefLen)
	if err != nil {
		return "", err
	}
	return v, checkIDRef(name, v)
}

func refParam(c echo.Context, name string, max int) (string, error) {
	v, err := pathParam(c, name)
	if err != nil {
		return "", err
	}
	if v == "" || len(v) > max {
		return "", badRequest("invalid_"+name, name, "%s must be 1 to %d characters", name, max)
	}
	return v, nil
}

// tokenIDParam is the {token_id} path value: a canonical id.
func tokenIDParam(c echo.Context) (int64, error) {
	return idParam(c, "token_id")
}

// queryInt parses an optional non-negative integer query parameter, in
// canonical decimal ("0" or an id: no sign or leading zero).
func queryInt(q url.Values, name string, max int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, ok := parseCount(v)
	if !ok || (max > 0 && n > max) {
		if max > 0 {
			return 0, badRequest("invalid_"+name, name, "%s must be an integer from 0 to %d in canonical decimal form", name, max)
		}
		return 0, badRequest("invalid_"+name, name, "%s must be a non-negative integer in canonical decimal form", name)
	}
	return n, nil
}

// noStore marks a response that must not be cached.
func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
}
