// Package convert turns External Secrets Operator manifests into secretsync ones
// (kubectl secretsync convert). ESO's YAML is read generically (map[string]any), not
// with ESO's Go types: every field is either mapped, dropped with a warning (no
// effect here) or reported as unsupported with its path — never dropped silently.
package convert

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"
)

// APIVersion is the apiVersion of every converted object.
const APIVersion = "secretsync.dev/v1alpha1"

// Converted is the result of converting a stream of ESO manifests.
type Converted struct {
	Docs     [][]byte // secretsync manifests, YAML, in input order
	Warnings []string // fields dropped because they have no effect here
	Errors   []string // fields or objects whose behaviour cannot be reproduced
}

// splitDocs splits a YAML stream at document separators.
func splitDocs(in []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) > 0 {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for _, line := range bytes.SplitAfter(in, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
		}
	}
	return out
}

// TemplateChecker checks one target.template.data entry with the operator's own
// parse-time rules (externalsecret.CheckTemplate); nil skips the check.
type TemplateChecker func(key, text string) error

// Convert reads ESO manifests (external-secrets.io/v1 and v1beta1) and converts
// them. It never fails as a whole: what cannot be converted is in Errors, by path.
func Convert(r io.Reader, check TemplateChecker) (Converted, error) {
	in, err := io.ReadAll(r)
	if err != nil {
		return Converted{}, fmt.Errorf("read input: %w", err)
	}
	var out Converted
	for i, doc := range splitDocs(in) {
		rep := &report{checkTemplate: check}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("document %d: not valid YAML: %v", i+1, err))
			continue
		}
		if m == nil {
			continue
		}
		items := []map[string]any{m}
		if k, _ := m["kind"].(string); strings.HasSuffix(k, "List") {
			items = nil
			for _, it := range asList(m["items"]) {
				if im, ok := it.(map[string]any); ok {
					items = append(items, im)
				}
			}
		}
		for j, item := range items {
			where := fmt.Sprintf("document %d", i+1)
			if len(items) > 1 || item != nil && m["items"] != nil {
				where = fmt.Sprintf("document %d item %d", i+1, j)
			}
			before := len(rep.errors)
			obj := convertObject(item, where, rep)
			if obj != nil && len(rep.errors) == before {
				b, err := yaml.Marshal(obj.body)
				if err != nil {
					return Converted{}, fmt.Errorf("%s: marshal: %w", where, err)
				}
				out.Docs = append(out.Docs, append(b, []byte(obj.trailer)...))
			}
		}
		out.Warnings = append(out.Warnings, rep.warnings...)
		out.Errors = append(out.Errors, rep.errors...)
	}
	return out, nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

// converted is one output object and the comment lines that follow it.
type converted struct {
	body    map[string]any
	trailer string
}

func convertObject(m map[string]any, where string, rep *report) *converted {
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	name := ""
	if md, ok := m["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
	}
	id := fmt.Sprintf("%s %s %q", where, kind, name)
	if apiVersion != "external-secrets.io/v1" && apiVersion != "external-secrets.io/v1beta1" {
		rep.fail(id, "unsupported: apiVersion %q (only external-secrets.io/v1 and v1beta1)", apiVersion)
		return nil
	}
	root := node{m: m, path: id + ": ", r: rep}
	root.take("apiVersion")
	root.take("kind")
	root.drop("status", "status is written by the operator")
	md, _ := root.child("metadata")
	spec, hasSpec := root.child("spec")
	defer root.done()
	if !hasSpec {
		rep.fail(id, "no spec")
		return nil
	}
	body := map[string]any{"apiVersion": APIVersion, "kind": kind, "metadata": convertMetadata(md)}
	ns, _ := body["metadata"].(map[string]any)["namespace"].(string)
	switch kind {
	case "SecretStore", "ClusterSecretStore":
		s, trailer := convertStoreSpec(spec, kind == "ClusterSecretStore", ns)
		body["spec"] = s
		return &converted{body: body, trailer: trailer}
	case "ExternalSecret":
		body["spec"] = convertESSpec(spec)
	case "ClusterExternalSecret":
		body["spec"] = convertCESSpec(spec)
	default:
		rep.fail(id, "unsupported: kind %s (PushSecret, generators and other kinds have no secretsync equivalent)", kind)
		clear(spec.m)
		return nil
	}
	return &converted{body: body}
}

// convertMetadata keeps what a user writes; server-set fields are dropped.
func convertMetadata(n node) map[string]any {
	out := map[string]any{}
	if n.m == nil {
		return out
	}
	copyScalar(n, out, "name", "namespace")
	set(out, "labels", n.stringMap("labels"))
	ann := n.stringMap("annotations")
	if _, ok := ann["kubectl.kubernetes.io/last-applied-configuration"]; ok {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		n.r.warn(n.at("annotations"), "dropped: kubectl.kubernetes.io/last-applied-configuration (set again by kubectl apply)")
	}
	set(out, "annotations", ann)
	for _, k := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"} {
		n.drop(k, "set by the API server or by ESO's controllers")
	}
	n.done()
	return out
}
