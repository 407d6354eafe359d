package httpapi

import (
	"strconv"

	"github.com/labstack/echo/v4"
)

// Ids travel as text in paths, queries and bodies. strconv.ParseInt takes
// "+1", "01" and "-0", so one id had many spellings, and a filter in front
// of the service matching "/tokens/1" would miss "/tokens/01". Every id
// this package reads goes through parseID: canonical decimal, [1-9][0-9]*,
// within int64. Nothing else is an id.

// idRule is the rule quoted in refusals.
const idRule = "a positive integer in canonical decimal form (digits only: no sign, leading zero, space, fraction or exponent)"

// parseID parses a canonical id: [1-9][0-9]* within int64.
func parseID(s string) (int64, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' || !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseCount parses a canonical non-negative integer: "0" or an id.
func parseCount(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	return parseID(s)
}

// idParam reads the path parameter name as an id; it is not
// percent-decoded, since an encoded digit is not canonical.
func idParam(c echo.Context, name string) (int64, error) {
	v := c.Param(name)
	id, ok := parseID(v)
	if !ok {
		return 0, badRequest("invalid_"+name, name, "%s must be %s; got %q", name, idRule, clip(v))
	}
	return id, nil
}

// checkIDRef checks a reference that is either an id or a name (an agent
// slug, a user login). Slugs and logins are never all digits, so a value
// of digits (with an optional leading "+", which no name starts with) can
// only mean an id, and must then be one in canonical form; field names the
// value in the refusal, with code invalid_<field>.
func checkIDRef(field, v string) error {
	digits := v
	if len(digits) > 1 && digits[0] == '+' {
		digits = digits[1:]
	}
	if !isDigits(digits) {
		return nil // a name (or nothing): the service validates it
	}
	if _, ok := parseID(v); !ok {
		return badRequest("invalid_"+field, field, "%s %q looks like an id but is not %s", field, clip(v), idRule)
	}
	return nil
}
