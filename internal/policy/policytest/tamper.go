// Package policytest holds test helpers for policy bundles that the policy
// package's own tests and the end-to-end tests share: tampering with a
// signed bundle as an attacker on the bundle server could.
package policytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// Tamper rewrites one file of a bundle tarball with edit, keeping every
// entry's header and the signatures, so only that file's content differs.
// The file is the entry named name (opa build names entries with a leading
// "/"), or else the one entry whose path ends in "/"+name (compile.New
// keeps a module's full path); the edit must change it.
func Tamper(t testing.TB, tarball []byte, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		h *tar.Header
		b []byte
	}
	var entries []entry
	exact, suffixed := -1, []int{}
	for tr := tar.NewReader(zr); ; {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.TrimPrefix(h.Name, "/") == name:
			exact = len(entries)
		case strings.HasSuffix(h.Name, "/"+name):
			suffixed = append(suffixed, len(entries))
		}
		entries = append(entries, entry{h, b})
	}
	target := exact
	if target < 0 {
		if len(suffixed) != 1 {
			t.Fatalf("want one %s in the bundle, found %d", name, len(suffixed))
		}
		target = suffixed[0]
	}
	edited := edit(entries[target].b)
	if bytes.Equal(edited, entries[target].b) {
		t.Fatalf("the edit left %s unchanged", entries[target].h.Name)
	}
	entries[target].b, entries[target].h.Size = edited, int64(len(edited))

	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(e.h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// RankViewerAsAdmin returns an edit for Tamper that gives the viewer agent
// role the admin rank in a bundle's data.json: an escalation inside the
// manifest's roots, which only the signature's digest can catch.
func RankViewerAsAdmin(t testing.TB) func([]byte) []byte {
	return func(b []byte) []byte {
		t.Helper()
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		authz, _ := doc["agentauthz"].(map[string]any)
		config, _ := authz["config"].(map[string]any)
		roles, _ := config["agent_roles"].(map[string]any)
		if roles["admin"] == nil {
			t.Fatal("data.json has no agentauthz.config.agent_roles.admin")
		}
		roles["viewer"] = roles["admin"]
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
