// Package authz is agentauthz's service layer: every operation (an
// "ability") gathers its facts from the store, asks the policy engine for one
// decision, and applies the effect. The HTTP API and the CLI both call it, so
// they cannot disagree.
//
// It must never decide: no role name, capability or role comparison appears
// here. It validates the shape of requests (400s), knows which facts each
// ability needs, and fails closed: an engine or store error is an error,
// never an allow.
package authz
