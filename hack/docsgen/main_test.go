package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var root = filepath.Join("..", "..")

// TestReferenceUpToDate fails when api/v1alpha1 changed without regenerating the docs.
func TestReferenceUpToDate(t *testing.T) {
	got, err := Generate(filepath.Join(root, "api", "v1alpha1"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/reference.md is stale: run hack/gen-api-docs.sh")
	}
}

func TestGenerateCoversEveryField(t *testing.T) {
	md, err := Generate(filepath.Join(root, "api", "v1alpha1"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Generate(filepath.Join(root, "api", "v1alpha1"))
	if !bytes.Equal(md, again) {
		t.Fatal("output is not deterministic")
	}
	s := string(md)
	for _, want := range []string{
		"## ExternalSecretSpec", "`refreshInterval`", "`secretStoreRef`", "`dataFrom`",
		"## VaultProvider", "`tokenSecretRef`", "## AWSProvider", "`endpoint`",
		"one of `Owner`, `Orphan`, `Merge`, `None`",                        // enum from a named type
		"spec.target.deletionPolicy: Delete requires creationPolicy Owner", // CEL message
		"| `TargetOwnedElsewhere` |",                                       // condition reasons
	} {
		if !strings.Contains(s, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

func TestMarkerArg(t *testing.T) {
	for _, tc := range []struct{ args, name, want string }{
		{`rule="a == 'b'",message="x: y"`, "message", "x: y"},
		{`rule="a == 'b'",message="x: y"`, "rule", "a == 'b'"},
		{"name=\"READY\",type=string,JSONPath=`.status`", "name", "READY"},
		{"name=\"READY\",type=string,JSONPath=`.status`", "JSONPath", ".status"},
		{"name=\"READY\",type=string", "type", "string"},
		{`rule="has(self.message=1)",message="m"`, "message", "m"},
	} {
		if got := markerArg(tc.args, tc.name); got != tc.want {
			t.Errorf("markerArg(%q, %q) = %q, want %q", tc.args, tc.name, got, tc.want)
		}
	}
}

// TestTroubleshootingCoversEveryReason: docs/troubleshooting.md has a section for every
// Reason* constant in api/v1alpha1.
func TestTroubleshootingCoversEveryReason(t *testing.T) {
	p, err := load(filepath.Join(root, "api", "v1alpha1"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range p.consts {
		if !strings.HasPrefix(c.name, "Reason") {
			continue
		}
		n++
		if !strings.Contains(string(doc), "\n### "+c.value+"\n") {
			t.Errorf("docs/troubleshooting.md has no section \"### %s\" (%s)", c.value, c.name)
		}
	}
	if n < 20 {
		t.Errorf("found only %d Reason constants", n)
	}
}
