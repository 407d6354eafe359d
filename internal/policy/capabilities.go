package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// restrictedBuiltins are the built-ins a bundle may call only when the
// operator allows them (Options.AllowBuiltins): they reach outside the
// process, so a bundle that calls them could send the decision input
// (principals, owners, grants) elsewhere or read the process' environment,
// configuration or files. Pure built-ins (net.cidr_*, crypto, JWT decoding)
// and the merely non-deterministic ones (time.*, rand.*: they only switch
// the decision memo off) stay available.
//
// The JSON schema built-ins are here because a schema's "$ref" is fetched:
// an http(s) ref only from the hosts of Options.AllowNet, but a file:// ref
// from the local file system whatever allow_net says (OPA 1.22's schema
// loader does not gate it). Every other built-in of this OPA version was
// checked: none opens a connection or a file (http.send's TLS settings
// read files and environment variables, inside http.send).
var restrictedBuiltins = []string{
	"http.send",          // any network request; with TLS settings, files and environment variables
	"json.match_schema",  // fetches a schema's $ref: file:// always, http(s) from allowed hosts
	"json.verify_schema", // the same
	"net.lookup_ip_addr", // DNS queries
	"opa.runtime",        // environment variables and the OPA configuration
}

// RestrictedBuiltins lists the built-ins refused at activation unless allowed, sorted.
func RestrictedBuiltins() []string { return slices.Clone(restrictedBuiltins) }

// checkAllowBuiltins refuses an allowance for a name that is not restricted:
// a typo must not pass silently as an allowance that does nothing.
func checkAllowBuiltins(allow []string) error {
	for _, name := range allow {
		if !slices.Contains(restrictedBuiltins, name) {
			return fmt.Errorf("allow_builtins: %q is not a restricted built-in (restricted: %s)", name, strings.Join(restrictedBuiltins, ", "))
		}
	}
	return nil
}

// capabilities are this OPA version's capabilities without the restricted
// built-ins that allow does not name (the compiler then refuses a call to
// one with OPA's own error, "undefined function http.send"), and with
// allow_net set to allowNet: no host at all unless the operator names some.
// OPA reads a nil allow_net as "every host", so it is never nil here.
func capabilities(allow, allowNet []string) *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := make([]*ast.Builtin, 0, len(caps.Builtins))
	for _, bi := range caps.Builtins {
		if !slices.Contains(restrictedBuiltins, bi.Name) || slices.Contains(allow, bi.Name) {
			kept = append(kept, bi)
		}
	}
	caps.Builtins = kept
	caps.AllowNet = append([]string{}, allowNet...)
	return caps
}
