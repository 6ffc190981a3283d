package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/secretsync/secretsync/controllers/externalsecret"
	"github.com/secretsync/secretsync/internal/cli/convert"
	"github.com/secretsync/secretsync/internal/testenv"
)

// TestConvertedManifestsAccepted applies every converted manifest of the corpus to
// a real kube-apiserver with our CRDs (schema, enums, CEL rules): each is accepted.
func TestConvertedManifestsAccepted(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	if err := kube.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	inputs, _ := filepath.Glob("testdata/convert/*.yaml")
	applied := 0
	for _, in := range inputs {
		if filepath.Base(in) == "unsupported.yaml" {
			continue
		}
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		res, err := convert.Convert(bytes.NewReader(b), externalsecret.CheckTemplate)
		if err != nil || len(res.Errors) > 0 {
			t.Fatalf("%s: %v %v", in, err, res.Errors)
		}
		for _, doc := range res.Docs {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatalf("%s: %v\n%s", in, err, doc)
			}
			if err := kube.Client.Create(ctx, u, client.DryRunAll); err != nil {
				t.Errorf("%s: %s %q refused: %v\n%s", in, u.GetKind(), u.GetName(), err, doc)
			}
			applied++
		}
	}
	if applied < 10 {
		t.Fatalf("only %d manifests applied", applied)
	}
	t.Logf("%d converted manifests accepted", applied)
}
