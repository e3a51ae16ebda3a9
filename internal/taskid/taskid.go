// Package taskid seals the task ids the router gives clients in place of the
// ids MCP servers give their tasks (the tasks extension, SEP-2663, and the
// tasks of 2025-11-25).
//
// A sealed id has two parts. Its route, the prefixed name of the tool that
// created the task and the target it was called on, is in the clear: authz
// reads it (Route) to find the server and tool it decides a task request
// for, without a key. Its task, the caller that created it (issuer and
// subject), the server, the tool, the target and the server's own id, is
// encrypted (AES-GCM) with the route as additional data: only the router,
// holding the key, opens it (Open), and an id whose route was changed does
// not open. So authz decides on the route, and the router refuses a request
// whose route, caller or server is not the one the id was sealed for.
package taskid

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Prefix starts every sealed id: the format and its version.
const Prefix = "mcpt1."

// MaxLen bounds a sealed id, in bytes: it travels in the Mcp-Name header
// (mcpparse refuses a longer params.taskId).
const MaxLen = 4 << 10

// ErrInvalid is returned for an id that is not one this package sealed with
// one of the keys given, whatever the cause.
var ErrInvalid = errors.New("taskid: invalid task id")

// Route is the clear part of an id: what authz decides on.
type Route struct {
	// Name is the prefixed name of the tool that created the task, as the
	// client called it.
	Name string
	// Target is the server target the tool was called on (the value of the
	// server's target argument); "" for the default.
	Target string
}

// Task is the sealed part of an id.
type Task struct {
	Issuer, Subject string // the caller that created the task
	Server          string // the registration (namespace/name)
	Tool            string // the tool that created it, unprefixed
	Upstream        string // the server's own task id
	Issued          int64  // unix seconds
}

// format is the first byte of the sealed plaintext.
const format = 1

// aad is the additional data of an id: this use, then its route.
func aad(r Route) []byte {
	b := make([]byte, 0, 32+len(r.Name)+len(r.Target))
	b = append(b, "mcp-authz/router/task/v1"...)
	return appendFields(b, r.Name, r.Target)
}

func appendFields(b []byte, fields ...string) []byte {
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// reader reads what appendFields wrote.
type reader struct{ b []byte }

func (r *reader) field() (string, bool) {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		return "", false
	}
	f := string(r.b[k : k+int(n)])
	r.b = r.b[k+int(n):]
	return f, true
}

// Seal returns the id of t, routed by r, sealed with a.
func Seal(a cipher.AEAD, r Route, t Task) (string, error) {
	if r.Name == "" || t.Upstream == "" || t.Server == "" || t.Tool == "" {
		return "", errors.New("taskid: seal: incomplete task")
	}
	plain := appendFields([]byte{format}, t.Issuer, t.Subject, t.Server, t.Tool, t.Upstream)
	plain = binary.AppendVarint(plain, t.Issued)
	b := appendFields(nil, r.Name, r.Target)
	clear := len(b)
	b = append(b, make([]byte, a.NonceSize())...)
	if _, err := rand.Read(b[clear:]); err != nil {
		return "", fmt.Errorf("taskid: seal: %w", err)
	}
	b = a.Seal(b, b[clear:], plain, aad(r))
	id := Prefix + base64.RawURLEncoding.EncodeToString(b)
	if len(id) > MaxLen {
		return "", fmt.Errorf("taskid: seal: id of %d bytes, more than %d", len(id), MaxLen)
	}
	return id, nil
}

// split decodes id into its route and the nonce and ciphertext after it.
func split(id string) (Route, []byte, bool) {
	s, ok := strings.CutPrefix(id, Prefix)
	if !ok || len(id) > MaxLen {
		return Route{}, nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Route{}, nil, false
	}
	rd := reader{b}
	name, ok1 := rd.field()
	target, ok2 := rd.field()
	if !ok1 || !ok2 || name == "" {
		return Route{}, nil, false
	}
	return Route{Name: name, Target: target}, rd.b, true
}

// RouteOf returns the route of id, not authenticated: an id whose route was
// changed still parses here, and Open refuses it. ok is false for anything
// that is not a sealed id's shape.
func RouteOf(id string) (Route, bool) {
	r, _, ok := split(id)
	return r, ok
}

// Open authenticates and decrypts id with any of aeads (the first seals, the
// others are older keys still accepted).
func Open(aeads []cipher.AEAD, id string) (Route, Task, error) {
	r, sealed, ok := split(id)
	if !ok {
		return Route{}, Task{}, ErrInvalid
	}
	ad := aad(r)
	for _, a := range aeads {
		if len(sealed) < a.NonceSize()+a.Overhead() {
			continue
		}
		plain, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad)
		if err != nil {
			continue
		}
		t, ok := unmarshal(plain)
		if !ok {
			return Route{}, Task{}, ErrInvalid
		}
		return r, t, nil
	}
	return Route{}, Task{}, ErrInvalid
}

func unmarshal(plain []byte) (Task, bool) {
	if len(plain) == 0 || plain[0] != format {
		return Task{}, false
	}
	rd := reader{plain[1:]}
	var f [5]string
	for i := range f {
		v, ok := rd.field()
		if !ok {
			return Task{}, false
		}
		f[i] = v
	}
	issued, k := binary.Varint(rd.b)
	if k <= 0 || k != len(rd.b) || f[2] == "" || f[3] == "" || f[4] == "" {
		return Task{}, false
	}
	return Task{Issuer: f[0], Subject: f[1], Server: f[2], Tool: f[3], Upstream: f[4], Issued: issued}, true
}
