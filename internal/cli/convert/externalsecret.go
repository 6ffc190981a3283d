package convert

import "sort"

func convertESSpec(n node) map[string]any {
	out := map[string]any{}
	if ref, ok := n.child("secretStoreRef"); ok {
		m := map[string]any{}
		copyScalar(ref, m, "name", "kind")
		ref.done()
		out["secretStoreRef"] = m
	}
	copyScalar(n, out, "refreshInterval", "refreshPolicy")
	if t, ok := n.child("target"); ok {
		set(out, "target", convertTarget(t))
	}
	var data []any
	for _, d := range n.list("data") {
		data = append(data, convertDataItem(d))
	}
	set(out, "data", data)
	var from []any
	for _, d := range n.list("dataFrom") {
		from = append(from, convertDataFrom(d))
	}
	set(out, "dataFrom", from)
	n.done()
	return out
}

func convertTarget(t node) map[string]any {
	out := map[string]any{}
	copyScalar(t, out, "name", "creationPolicy", "deletionPolicy", "immutable")
	if tpl, ok := t.child("template"); ok {
		m := map[string]any{}
		copyScalar(tpl, m, "type", "mergePolicy")
		tpl.drop("engineVersion", "secretsync has one template engine (Go text/template with a fixed list of pure functions, see docs/reference.md); check the template uses only those")
		if md, ok := tpl.child("metadata"); ok {
			mm := map[string]any{}
			set(mm, "labels", md.stringMap("labels"))
			set(mm, "annotations", md.stringMap("annotations"))
			md.unsupported("finalizers", "finalizers on the target Secret")
			md.done()
			set(m, "metadata", mm)
		}
		data := tpl.stringMap("data")
		checkTemplates(tpl, data)
		set(m, "data", data)
		tpl.unsupported("templateFrom", "templates from ConfigMaps/Secrets; inline them in template.data")
		tpl.done()
		out["template"] = m
	}
	t.done()
	return out
}

// esoDefaults takes ESO options that have an effect only when not at their
// default: conversionStrategy Default and metadataPolicy None are ours too.
func esoDefaults(n node) {
	if v := n.str("conversionStrategy"); v != "" && v != "Default" {
		n.r.fail(n.at("conversionStrategy"), "unsupported: %s", v)
	}
	if v := n.str("metadataPolicy"); v != "" && v != "None" {
		n.r.fail(n.at("metadataPolicy"), "unsupported: %s (secretsync reads values, not tags/metadata)", v)
	}
	if v := n.str("nullBytePolicy"); v != "" && v != "Ignore" {
		n.r.fail(n.at("nullBytePolicy"), "unsupported: %s", v)
	}
}

func convertDataItem(d node) map[string]any {
	out := map[string]any{}
	copyScalar(d, out, "secretKey")
	if r, ok := d.child("remoteRef"); ok {
		m := map[string]any{}
		copyScalar(r, m, "key", "property", "version", "decodingStrategy")
		esoDefaults(r)
		r.done()
		out["remoteRef"] = m
	}
	d.unsupported("sourceRef", "per-entry store or generator; use one ExternalSecret per store")
	d.done()
	return out
}

func convertDataFrom(d node) map[string]any {
	out := map[string]any{}
	if e, ok := d.child("extract"); ok {
		m := map[string]any{}
		copyScalar(e, m, "key", "version", "decodingStrategy")
		e.unsupported("property", "extract of a nested object; use data entries with property")
		esoDefaults(e)
		e.done()
		out["extract"] = m
	}
	if f, ok := d.child("find"); ok {
		m := map[string]any{}
		copyScalar(f, m, "path", "decodingStrategy")
		if name, ok := f.child("name"); ok {
			nm := map[string]any{}
			copyScalar(name, nm, "regexp")
			name.done()
			m["name"] = nm
		}
		set(m, "tags", f.stringMap("tags"))
		esoDefaults(f)
		f.done()
		out["find"] = m
	}
	var rw []any
	for _, r := range d.list("rewrite") {
		m := map[string]any{}
		if re, ok := r.child("regexp"); ok {
			rm := map[string]any{}
			// target "" is meaningful (delete the match): keep it.
			rm["source"], rm["target"] = re.str("source"), re.str("target")
			re.done()
			m["regexp"] = rm
		}
		r.unsupported("transform", "template rewrites; use regexp rewrites")
		r.done()
		rw = append(rw, m)
	}
	set(out, "rewrite", rw)
	d.unsupported("sourceRef", "generators and per-entry stores have no secretsync equivalent")
	d.done()
	return out
}

func convertCESSpec(n node) map[string]any {
	out := map[string]any{}
	var sels []any
	if sel, ok := n.take("namespaceSelector"); ok && sel != nil {
		sels = append(sels, sel)
	}
	if v, ok := n.take("namespaceSelectors"); ok {
		sels = append(sels, asList(v)...)
	}
	set(out, "namespaceSelectors", sels)
	set(out, "namespaces", n.stringList("namespaces"))
	copyScalar(n, out, "externalSecretName")
	if md, ok := n.child("externalSecretMetadata"); ok {
		m := map[string]any{}
		set(m, "labels", md.stringMap("labels"))
		set(m, "annotations", md.stringMap("annotations"))
		md.done()
		set(out, "externalSecretMetadata", m)
	}
	n.drop("refreshTime", "secretsync follows namespaces on their watch events, not on a timer")
	if s, ok := n.child("externalSecretSpec"); ok {
		out["externalSecretSpec"] = convertESSpec(s)
	} else {
		n.r.fail(n.at("externalSecretSpec"), "missing")
	}
	n.done()
	return out
}

// checkTemplates reports template entries the operator would refuse (ESO's
// templates may use Sprig functions that secretsync does not have).
func checkTemplates(tpl node, data map[string]any) {
	if tpl.r.checkTemplate == nil {
		return
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := tpl.r.checkTemplate(k, data[k].(string)); err != nil {
			tpl.r.fail(tpl.at("data")+"["+k+"]", "unsupported: %v: it uses a function or construct secretsync's templates do not have (docs/reference.md lists them)", err)
		}
	}
}
