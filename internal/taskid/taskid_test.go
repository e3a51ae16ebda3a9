package taskid

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func aead(t *testing.T, seed byte) cipher.AEAD { return aeadKey(t, seed) }

func aeadKey(t testing.TB, seed byte) cipher.AEAD {
	t.Helper()
	k := make([]byte, 32)
	for i := range k {
		k[i] = seed
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSealOpen(t *testing.T) {
	k1, k2 := aead(t, 1), aead(t, 2)
	route := Route{Name: "alpha_job", Target: "prod"}
	task := Task{Issuer: "https://idp/realms/a", Subject: "alice", Server: "ns/alpha", Tool: "job", Upstream: "up-1", Issued: 1700000000}
	id, err := Seal(k1, route, task)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, Prefix) || strings.Contains(id, "alice") || strings.Contains(id, "up-1") {
		t.Fatalf("id %q: want the prefix and nothing of the task in the clear", id)
	}
	if r, ok := RouteOf(id); !ok || r != route {
		t.Fatalf("RouteOf: %+v %v", r, ok)
	}
	// Rotation: a new key first, the old one still opens.
	r, got, err := Open([]cipher.AEAD{k2, k1}, id)
	if err != nil || r != route || got != task {
		t.Fatalf("Open: %+v %+v %v", r, got, err)
	}

	// Another route with the same sealed part: what authz would decide on
	// changes, so the id must not open.
	_, sealed, _ := split(id)
	forged := Prefix + base64.RawURLEncoding.EncodeToString(append(appendFields(nil, "alpha_other", "prod"), sealed...))
	if r, ok := RouteOf(forged); !ok || r.Name != "alpha_other" {
		t.Fatalf("forged route %+v %v", r, ok)
	}
	flipped := []byte(id)
	flipped[len(flipped)-3] ^= 1
	tests := []struct {
		name  string
		id    string
		aeads []cipher.AEAD
	}{
		{name: "other key", id: id, aeads: []cipher.AEAD{k2}},
		{name: "route changed", id: forged, aeads: []cipher.AEAD{k1}},
		{name: "bit flipped", id: string(flipped), aeads: []cipher.AEAD{k1}},
		{name: "raw upstream id", id: "up-1", aeads: []cipher.AEAD{k1}},
		{name: "prefix only", id: Prefix, aeads: []cipher.AEAD{k1}},
		{name: "not base64", id: Prefix + "!!", aeads: []cipher.AEAD{k1}},
		{name: "truncated", id: id[:len(id)-10], aeads: []cipher.AEAD{k1}},
		{name: "too long", id: id + strings.Repeat("A", MaxLen), aeads: []cipher.AEAD{k1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Open(tt.aeads, tt.id); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Open: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	k := aead(t, 1)
	full := Task{Server: "ns/a", Tool: "job", Upstream: "u"}
	tests := []struct {
		name  string
		route Route
		task  Task
	}{
		{name: "no name", task: full},
		{name: "no upstream id", route: Route{Name: "a_job"}, task: Task{Server: "ns/a", Tool: "job"}},
		{name: "no server", route: Route{Name: "a_job"}, task: Task{Tool: "job", Upstream: "u"}},
		{name: "too long", route: Route{Name: "a_job"}, task: Task{Server: "ns/a", Tool: "job", Upstream: strings.Repeat("u", MaxLen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := Seal(k, tt.route, tt.task); err == nil {
				t.Fatalf("Seal: %q, want an error", id)
			}
		})
	}
}
