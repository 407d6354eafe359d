// Package bundles embeds the default bundle's data and manifest; together
// with package policies they form the policy the binary ships with.
package bundles

import "embed"

// Default holds default/data.json and default/.manifest.
//
//go:embed default/data.json default/.manifest
var Default embed.FS
