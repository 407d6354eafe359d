// Package policies embeds agentauthz's Rego policies so the binary carries
// its default policy. Each package lives in the directory its path names
// (agentauthz/<concern>/*.rego is package agentauthz.<concern>); loaders
// skip the *_test.rego files it also holds.
package policies

import "embed"

// FS holds every .rego file under agentauthz/, tests included.
//
//go:embed agentauthz
var FS embed.FS
