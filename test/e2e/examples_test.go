package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/internal/testenv"
)

// TestExamplesApply applies every manifest under examples/ the way a user would
// (kubectl apply --server-side) and checks that the spec the API server stores is
// exactly the spec in the file: no schema defaults, no normalisation, so GitOps tools
// see no drift.
func TestExamplesApply(t *testing.T) {
	k := testenv.StartKube(t)
	files := exampleFiles(t)
	if len(files) < 5 {
		t.Fatalf("found %d example files, want at least 5", len(files))
	}
	for _, f := range files {
		// Sequential on purpose: later files reference objects of earlier ones (the
		// namespace), the way `kubectl apply -f examples/` applies them.
		out, err := kubectl(t, k.Kubeconfig, "apply", "--server-side", "--field-manager=examples-test", "-f", f)
		if err != nil {
			t.Fatalf("kubectl apply -f %s: %v\n%s", rel(f), err, out)
		}
	}
	for _, f := range files {
		for _, want := range decodeManifests(t, f) {
			t.Run(rel(f)+"/"+want.GetKind()+"/"+want.GetName(), func(t *testing.T) {
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(want.GroupVersionKind())
				if err := k.Client.Get(t.Context(), client.ObjectKeyFromObject(want), got); err != nil {
					t.Fatalf("get: %v", err)
				}
				wantSpec, hasSpec := want.Object["spec"]
				if !hasSpec {
					return // Namespaces and Secrets: existence is the check
				}
				if w, g := canonicalJSON(t, wantSpec), canonicalJSON(t, got.Object["spec"]); w != g {
					t.Errorf("spec drifted after apply (defaulting or normalisation):\nfile:   %s\nserver: %s", w, g)
				}
			})
		}
	}
}

// exampleFiles lists examples/**/*.yaml in the order `kubectl apply -R -f` uses.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	root := filepath.Join(testenv.RepoRoot(), "examples")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// decodeManifests reads every object of a multi-document YAML file.
func decodeManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", rel(path), err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// canonicalJSON renders v with sorted keys and integral numbers, so a value decoded
// from YAML (float64) and one read from the server (int64) compare equal.
func canonicalJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var n any
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// kubectl runs kubectl (bin/k8s/kubectl, else the one on PATH) against kubeconfig.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(testenv.RepoRoot(), "bin", "k8s", "kubectl")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("kubectl"); err != nil {
			t.Fatalf("kubectl not found (run `make tools`): %v", err)
		}
	}
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func rel(p string) string {
	r, err := filepath.Rel(testenv.RepoRoot(), p)
	if err != nil {
		return p
	}
	return r
}
