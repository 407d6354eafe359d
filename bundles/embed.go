// Package bundles embeds the default bundle's data and manifest; together
// with package policies they form the policy the binary ships with.
package bundles

import "embed"

// Default holds default/data.json, default/.manifest and the decision cases
// default/agentauthz/cases/data.json (bundle data at data.agentauthz.cases:
// golden inputs the policy must decide as expected before it is activated).
//
//go:embed default/data.json default/.manifest default/agentauthz/cases/data.json
var Default embed.FS
