package taskid

import (
	"crypto/cipher"
	"testing"
)

// FuzzOpen: no input panics Open or RouteOf; an id that opens routes as
// RouteOf says, and no id that does not start with Prefix opens.
func FuzzOpen(f *testing.F) {
	k := aeadKey(f, 3)
	id, err := Seal(k, Route{Name: "a_job", Target: "prod"}, Task{Issuer: "i", Subject: "s", Server: "ns/a", Tool: "job", Upstream: "u-1"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{id, id[:len(id)-1], Prefix, Prefix + "AAAA", "u-1", ""} {
		f.Add(seed)
	}
	aeads := []cipher.AEAD{k}
	f.Fuzz(func(t *testing.T, v string) {
		route, ok := RouteOf(v)
		r, task, err := Open(aeads, v)
		if err != nil {
			return
		}
		if !ok || r != route || task.Upstream == "" || len(v) < len(Prefix) || v[:len(Prefix)] != Prefix {
			t.Fatalf("%q opened to %+v %+v; RouteOf %+v %v", v, r, task, route, ok)
		}
	})
}
