// Package policies embeds agentauthz's Rego policies so the binary carries
// its default policy. Loaders skip the *_test.rego files it also holds.
package policies

import "embed"

// FS holds every .rego file of this directory, tests included.
//
//go:embed *.rego
var FS embed.FS
