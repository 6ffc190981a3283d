package convert

// admitAllTrailer follows a ClusterSecretStore whose ESO original had no
// conditions: ESO admits every namespace then, ours admits none.
const admitAllTrailer = `  # ESO's ClusterSecretStore had no conditions: it admitted EVERY namespace.
  # A secretsync ClusterSecretStore without conditions admits none. To keep ESO's
  # behaviour, uncomment (or, better, list the namespaces that need it):
  # conditions:
  #   - namespaceSelector: {}
`

func convertStoreSpec(n node, cluster bool, ns string) (map[string]any, string) {
	out := map[string]any{}
	n.drop("refreshInterval", "store re-validation interval; secretsync re-checks stores with backoff (--store-recheck)")
	n.drop("retrySettings", "secretsync retries with exponential backoff and jitter")
	n.drop("controller", "ESO controller class selection")
	if p, ok := n.child("provider"); ok {
		out["provider"] = convertProvider(p, cluster, ns)
	} else {
		n.r.fail(n.at("provider"), "missing")
	}
	trailer := ""
	conds := n.list("conditions")
	if cluster {
		var list []any
		for _, c := range conds {
			list = append(list, convertCondition(c))
		}
		if len(list) > 0 {
			out["conditions"] = list
		} else {
			n.r.warn(n.at("conditions"), "ESO's ClusterSecretStore had none (open to every namespace); the converted one admits NO namespace until you add conditions (a commented admit-all entry is in the output)")
			trailer = admitAllTrailer
		}
	} else if len(conds) > 0 {
		n.r.fail(n.at("conditions"), "unsupported: only a ClusterSecretStore has conditions")
	}
	n.done()
	return out, trailer
}

func convertCondition(c node) map[string]any {
	out := map[string]any{}
	set(out, "namespaces", c.stringList("namespaces"))
	if sel, ok := c.take("namespaceSelector"); ok && sel != nil {
		out["namespaceSelector"] = sel
	}
	c.unsupported("namespaceRegexes", "namespaces are admitted by name or label selector; list them or label them")
	c.done()
	return out
}

func convertProvider(p node, cluster bool, ns string) map[string]any {
	out := map[string]any{}
	other := false // a provider we do not have, already reported
	for k := range p.m {
		switch k {
		case "aws":
			if a, ok := p.child("aws"); ok {
				out["aws"] = convertAWS(a, cluster, ns)
			}
		case "vault":
			if v, ok := p.child("vault"); ok {
				out["vault"] = convertVault(v, cluster, ns)
			}
		default:
			p.unsupported(k, "provider "+k+" (secretsync has aws and vault)")
			other = true
		}
	}
	if len(out) == 0 && !other {
		p.r.fail(p.path, "no aws or vault provider")
	}
	p.done()
	return out
}

func convertAWS(a node, cluster bool, ns string) map[string]any {
	out := map[string]any{}
	switch svc := a.str("service"); svc {
	case "SecretsManager", "ParameterStore":
		out["service"] = svc
	default:
		a.r.fail(a.at("service"), "unsupported: service %q (SecretsManager or ParameterStore)", svc)
	}
	copyScalar(a, out, "region", "role", "externalID")
	a.unsupported("additionalRoles", "role chaining; assume the last role directly with provider.aws.role")
	a.unsupported("sessionTags", "session tags on AssumeRole")
	a.unsupported("transitiveTagKeys", "session tags on AssumeRole")
	a.unsupported("prefix", "a key prefix; write full keys in the ExternalSecrets")
	a.drop("secretsManager", "PushSecret/deletion settings; secretsync never writes to Secrets Manager")
	if auth, ok := a.child("auth"); ok {
		set(out, "auth", convertAWSAuth(auth, cluster, ns, out))
	}
	a.done()
	return out
}

func convertAWSAuth(n node, cluster bool, ns string, aws map[string]any) map[string]any {
	out := map[string]any{}
	if s, ok := n.child("secretRef"); ok {
		sr := map[string]any{}
		for _, k := range []string{"accessKeyIDSecretRef", "secretAccessKeySecretRef", "sessionTokenSecretRef"} {
			if ref, ok := s.child(k); ok {
				sr[k] = secretRef(ref, cluster, ns)
			}
		}
		s.done()
		out["secretRef"] = sr
	}
	if j, ok := n.child("jwt"); ok {
		jw := map[string]any{}
		if sa, ok := j.child("serviceAccountRef"); ok {
			ref := serviceAccountRef(sa, cluster, ns)
			if _, ok := ref["audiences"]; !ok {
				// ESO's IRSA tokens are for STS; ours must name an audience.
				ref["audiences"] = []any{"sts.amazonaws.com"}
			}
			jw["serviceAccountRef"] = ref
		}
		j.done()
		out["jwt"] = jw
		if _, ok := aws["role"]; !ok {
			n.r.fail(j.path, "unsupported: ESO takes the role from the ServiceAccount's eks.amazonaws.com/role-arn annotation; set spec.provider.aws.role to that ARN")
		}
	}
	n.done()
	return out
}

// secretRef maps a SecretKeySelector; namespaces follow our rules: a SecretStore's
// references are in its own namespace (no field), a ClusterSecretStore's name one.
func secretRef(n node, cluster bool, ns string) map[string]any {
	out := map[string]any{}
	copyScalar(n, out, "name", "key")
	refNamespace(n, out, cluster, ns, true)
	n.done()
	return out
}

func refNamespace(n node, out map[string]any, cluster bool, ns string, required bool) {
	refNS := n.str("namespace")
	switch {
	case cluster && refNS != "":
		out["namespace"] = refNS
	case cluster && required:
		n.r.fail(n.at("namespace"), "unsupported: a ClusterSecretStore's Secret reference must name its namespace")
	case !cluster && refNS != "" && refNS == ns:
		n.r.warn(n.at("namespace"), "dropped: a SecretStore's references are always in its own namespace")
	case !cluster && refNS != "":
		n.r.fail(n.at("namespace"), "unsupported: a SecretStore cannot reference namespace %q", refNS)
	}
}

func serviceAccountRef(n node, cluster bool, ns string) map[string]any {
	out := map[string]any{}
	copyScalar(n, out, "name")
	set(out, "audiences", n.stringList("audiences"))
	refNamespace(n, out, cluster, ns, false)
	n.done()
	return out
}

func convertVault(v node, cluster bool, ns string) map[string]any {
	out := map[string]any{}
	copyScalar(v, out, "server", "path", "namespace", "caBundle")
	if ver := v.str("version"); ver != "" {
		out["version"] = ver
	}
	if cp, ok := v.child("caProvider"); ok {
		m := map[string]any{}
		copyScalar(cp, m, "type", "name", "key")
		refNamespace(cp, m, cluster, ns, true)
		cp.done()
		out["caProvider"] = m
	}
	v.drop("checkAndSet", "PushSecret only; secretsync never writes to Vault")
	for _, k := range []string{"readYourWrites", "forwardInconsistent"} {
		v.unsupported(k, "Vault Enterprise performance-standby consistency headers")
	}
	v.unsupported("tls", "client certificate (mTLS) to the Vault server")
	v.unsupported("headers", "custom request headers")
	if auth, ok := v.child("auth"); ok {
		out["auth"] = convertVaultAuth(auth, cluster, ns)
	} else {
		v.r.fail(v.at("auth"), "unsupported: Vault without auth")
	}
	v.done()
	return out
}

func convertVaultAuth(a node, cluster bool, ns string) map[string]any {
	out := map[string]any{}
	a.unsupported("namespace", "a Vault namespace for login only; set provider.vault.namespace")
	if t, ok := a.child("tokenSecretRef"); ok {
		out["tokenSecretRef"] = secretRef(t, cluster, ns)
	}
	if r, ok := a.child("appRole"); ok {
		m := map[string]any{}
		copyScalar(r, m, "path", "roleId")
		if ref, ok := r.child("roleRef"); ok {
			m["roleRef"] = secretRef(ref, cluster, ns)
		}
		if ref, ok := r.child("secretRef"); ok {
			m["secretRef"] = secretRef(ref, cluster, ns)
		}
		r.done()
		out["appRole"] = m
	}
	if k, ok := a.child("kubernetes"); ok {
		m := map[string]any{}
		copyScalar(k, m, "mountPath", "role")
		if sa, ok := k.child("serviceAccountRef"); ok {
			m["serviceAccountRef"] = serviceAccountRef(sa, cluster, ns)
		} else if !k.has("secretRef") {
			a.r.fail(k.path, "unsupported: without serviceAccountRef ESO logs in as its own ServiceAccount; name the ServiceAccount to use")
		}
		k.unsupported("secretRef", "a long-lived ServiceAccount token Secret; use serviceAccountRef (a TokenRequest token)")
		k.done()
		out["kubernetes"] = m
	}
	if j, ok := a.child("jwt"); ok {
		m := map[string]any{}
		copyScalar(j, m, "path", "role")
		if ref, ok := j.child("secretRef"); ok {
			m["secretRef"] = secretRef(ref, cluster, ns)
		}
		if t, ok := j.child("kubernetesServiceAccountToken"); ok {
			tok := map[string]any{}
			if sa, ok := t.child("serviceAccountRef"); ok {
				ref := serviceAccountRef(sa, cluster, ns)
				// ESO has audiences beside serviceAccountRef; ours has them inside.
				if aud := t.stringList("audiences"); len(aud) > 0 {
					ref["audiences"] = aud
				}
				tok["serviceAccountRef"] = ref
			}
			t.drop("expirationSeconds", "secretsync requests short-lived tokens itself")
			t.done()
			m["kubernetesServiceAccountToken"] = tok
		}
		j.done()
		out["jwt"] = m
	}
	for k := range a.m {
		a.unsupported(k, "Vault auth method "+k+" (secretsync has tokenSecretRef, appRole, kubernetes, jwt)")
	}
	return out
}
