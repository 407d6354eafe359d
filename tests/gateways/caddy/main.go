// Command caddy is a stock Caddy (standard modules only) built from its Go
// module at the version pinned in go.mod, so the end-to-end tests in
// tests/e2e run the forward_auth that Caddy's users run. It is a separate
// module so that Caddy's dependencies never enter agentauthz's go.mod.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
