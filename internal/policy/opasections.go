package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/keys"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
	"github.com/open-policy-agent/opa/v1/plugins/status"
)

// sections are the settings OPA decodes leniently (an unknown field is
// dropped), each with the OPA struct it decodes into; per-entry sections
// hold one such struct per name.
var sections = []struct {
	name     string
	perEntry bool
	into     func() any
}{
	{"services", true, func() any { return new(rest.Config) }},
	{"keys", true, func() any { return new(keys.Config) }},
	{"bundles", true, func() any { return new(bundleplugin.Source) }},
	{"decision_logs", false, func() any { return new(logs.Config) }},
	{"status", false, func() any { return new(status.Config) }},
}

// checkSections decodes each section strictly into OPA's own structs, so
// that a misspelt nested setting (bundles.b.pollin) stops the start rather
// than being ignored, and refuses a service of type oci: bundles are pulled
// with OPA's HTTP downloader only.
func checkSections(doc map[string]any) error {
	for _, sec := range sections {
		v, ok := doc[sec.name]
		if !ok || v == nil {
			continue
		}
		if !sec.perEntry {
			if err := decodeStrict(v, sec.into()); err != nil {
				return fmt.Errorf("%s: %w", sec.name, err)
			}
			continue
		}
		entries, err := sectionEntries(sec.name, v)
		if err != nil {
			return err
		}
		for _, path := range sortedKeys(entries) {
			into := sec.into()
			if err := decodeStrict(entries[path], into); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if svc, ok := into.(*rest.Config); ok && strings.EqualFold(svc.Type, "oci") {
				return fmt.Errorf("%s.type: oci is not supported: agentauthz pulls bundles over HTTP(S) only", path)
			}
		}
	}
	return nil
}

// sectionEntries names each entry of a per-entry section by its setting
// path: an object's entries by key, a list's (OPA allows `services` as a
// list of named entries) by index.
func sectionEntries(name string, v any) (map[string]any, error) {
	out := map[string]any{}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[name+"."+k] = e
		}
	case []any:
		for i, e := range x {
			out[fmt.Sprintf("%s[%d]", name, i)] = e
		}
	default:
		return nil, fmt.Errorf("%s must be an object", name)
	}
	return out, nil
}

// decodeStrict decodes v (YAML or JSON already decoded) into into, refusing unknown fields.
func decodeStrict(v, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
