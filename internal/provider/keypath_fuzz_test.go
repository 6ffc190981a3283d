package provider

import (
	"strings"
	"testing"
)

func TestCheckKey(t *testing.T) {
	cases := []struct {
		key string
		ok  bool
	}{
		{"team-a/db", true},
		{"/team-a/db", true},
		{"team-a/app/", true},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf", true},
		{"a.b/c..d/.e", true}, // dots inside a segment are names, not traversal
		{"", false},
		{"/", false},
		{"//", false},
		{"team-a/../team-b/db", false},
		{"..", false},
		{"team-a/.", false},
		{"./team-a", false},
		{"team-a//db", false},
		{`team-a\..\db`, false},
		{"team-a/%2e%2e/db", false},
		{"team-a/\x00db", false},
		{"team-a/\u0085db", false}, // C1 control
		{"team-a/\xffdb", false},   // invalid UTF-8
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			if err := CheckKey(c.key); (err == nil) != c.ok {
				t.Fatalf("CheckKey(%q) = %v, want ok=%v", c.key, err, c.ok)
			}
		})
	}
}

// FuzzUnderMount: whatever a tenant writes, a path UnderMount accepts is the mount
// followed by canonical segments: it cannot name anything outside the mount once a
// server resolves dot segments, decodes percent escapes or treats backslashes as
// separators.
func FuzzUnderMount(f *testing.F) {
	for _, s := range [][2]string{
		{"secret", "team-a/db"}, {"secret", "team-a/../team-b/db"}, {"secret", "../sys/policies/acl/x"},
		{"transit", "team-a-app"}, {"kv/team-a", "x/./y"}, {"secret", "a%2f..%2fb"}, {"secret", `a\..\b`},
		{"secret", "/ssm/name/"}, {"database", "creds/ro"}, {"a/../b", "c"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, mount, rel string) {
		p, err := UnderMount(mount, rel)
		if err != nil {
			return
		}
		m := strings.Trim(mount, "/")
		if !strings.HasPrefix(p, m+"/") {
			t.Fatalf("%q is not under mount %q", p, m)
		}
		if CheckKey(p) != nil {
			t.Fatalf("accepted path %q is not canonical", p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, `\%`) {
				t.Fatalf("accepted path %q has segment %q", p, seg)
			}
		}
	})
}
