package cli

import "github.com/secretsync/secretsync/api/v1alpha1"

// fixes is one short fix line per condition reason, from docs/troubleshooting.md
// (the section of the same name has the details). A test checks that every Reason
// constant of api/v1alpha1 has one.
var fixes = map[string]string{
	v1alpha1.ReasonSynced:               "nothing to fix: the target Secret holds the current remote data",
	v1alpha1.ReasonSecretStoreNotFound:  "check spec.secretStoreRef name and kind (default SecretStore; set kind: ClusterSecretStore for a cluster store)",
	v1alpha1.ReasonStoreNotReady:        "fix the store (kubectl get secretstore/clustersecretstore NAME -o yaml); its ExternalSecrets recover on their own",
	v1alpha1.ReasonNamespaceNotAllowed:  "add the namespace to the ClusterSecretStore's conditions[].namespaces or label it to match a conditions[].namespaceSelector (no conditions admit nobody)",
	v1alpha1.ReasonKeyNotAllowed:        "widen the admitting condition's allowedKeys (whole-key regexps) or read a key the namespace is meant to have",
	v1alpha1.ReasonKeyNotFound:          "check the key's spelling, its version, escaped dots in property (a\\.b) and that the store's credentials can see it",
	v1alpha1.ReasonInvalidProperty:      "drop property to take the whole value, or fix the path (the value or a step is not a JSON object)",
	v1alpha1.ReasonRemoteNotFound:       "the remote secret is gone; restore it (the target follows deletionPolicy meanwhile)",
	v1alpha1.ReasonProviderError:        "transient backend error, retried with backoff; check the backend's health, endpoint, proxy and CA",
	v1alpha1.ReasonAuthFailed:           "check the store's identity: static keys, role/externalID/trust policy, or the Vault role and its policy",
	v1alpha1.ReasonThrottled:            "the backend rate-limited the operator; lengthen refreshIntervals or request higher throughput",
	v1alpha1.ReasonTargetOwnedElsewhere: "rename target.name, delete the stale Secret, or use creationPolicy: Merge",
	v1alpha1.ReasonTargetNotFound:       "creationPolicy Merge never creates the Secret: create it, or use Owner/Orphan",
	v1alpha1.ReasonTargetImmutable:      "delete the immutable Secret to have it recreated with the new data, or drop immutable",
	v1alpha1.ReasonTargetTooLarge:       "the data exceeds 1 MiB: narrow dataFrom.find or split into several ExternalSecrets",
	v1alpha1.ReasonInvalidValue:         "check decodingStrategy against what is really stored (or the version id format)",
	v1alpha1.ReasonInvalidTemplate:      "fix target.template.data: it must parse, use fetched keys and only the documented pure functions",
	v1alpha1.ReasonInvalidKey:           "add rewrite rules so every resulting key matches [-._a-zA-Z0-9]+",
	v1alpha1.ReasonDuplicateKey:         "make rewrites more specific or narrow the find so no two sources give one key",
	v1alpha1.ReasonInvalidSpec:          "fix the field the message names (regexp, provider capability, version selector, non-canonical key)",
	v1alpha1.ReasonKubernetesError:      "the API server failed a request (retried); check its health, webhooks, quotas and the operator's RBAC",
	v1alpha1.ReasonValid:                "nothing to fix: the store is valid and authenticated",
	v1alpha1.ReasonCredentialsNotFound:  "create the referenced Secret/key or ServiceAccount (a ClusterSecretStore's Secret references must name their namespace)",
	v1alpha1.ReasonBackendUnreachable:   "check endpoint/server from inside the cluster, DNS, egress policy, proxy and CA (caBundle/caProvider)",
	v1alpha1.ReasonProvisioned:          "nothing to fix: every matched namespace has its ExternalSecret",
	v1alpha1.ReasonNamespacesFailed:     "see status.failedNamespaces: AlreadyExists means a foreign ExternalSecret of that name; delete or rename it, or set externalSecretName",
}

// fixFor is the fix line of a reason ("" when unknown to this plugin version).
func fixFor(reason string) string { return fixes[reason] }
