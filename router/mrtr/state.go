package mrtr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// State is what a router-issued requestState carries, sealed: a handle to a
// held call and its binding (caller, server, method, name, expiry).
type State struct {
	Handle               string // names the held call on the replica that holds it
	Issuer, Subject      string // the caller
	Server, Method, Name string // the call: server, method, unprefixed name or URI
	Expires              int64  // unix milliseconds
}

// Sealer seals and opens records under an AAD of their use (seal.Sealer).
type Sealer interface {
	Seal(plain, aad []byte) (string, error)
	Open(text string, aad []byte) ([]byte, error)
}

// stateAAD binds a sealed requestState to its use: a session id never
// opens as one, nor one as a session id.
var stateAAD = []byte("mcp-authz/router/requestState/v1")

// stateFormat is the first byte of a sealed State.
const stateFormat = 1

// ErrState is a requestState that does not open, or not as a State.
var ErrState = errors.New("mrtr: invalid requestState")

// Seal seals st into a requestState.
func Seal(s Sealer, st State) (string, error) {
	text, err := s.Seal(st.marshal(), stateAAD)
	if err != nil {
		return "", fmt.Errorf("mrtr: seal requestState: %w", err)
	}
	return text, nil
}

// Open opens a requestState that Seal sealed; nothing else.
func Open(s Sealer, text string) (State, error) {
	plain, err := s.Open(text, stateAAD)
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrState, err)
	}
	return unmarshalState(plain)
}

// marshal encodes s: the format byte, the strings length-prefixed
// (uvarint), Expires a varint.
func (s State) marshal() []byte {
	b := []byte{stateFormat}
	for _, f := range []string{s.Handle, s.Issuer, s.Subject, s.Server, s.Method, s.Name} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return binary.AppendVarint(b, s.Expires)
}

// unmarshalState decodes what marshal encoded; nothing else.
func unmarshalState(b []byte) (State, error) {
	if len(b) == 0 || b[0] != stateFormat {
		return State{}, ErrState
	}
	b = b[1:]
	var f [6]string
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return State{}, ErrState
		}
		f[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	exp, k := binary.Varint(b)
	if k <= 0 || k != len(b) || f[0] == "" {
		return State{}, ErrState
	}
	return State{Handle: f[0], Issuer: f[1], Subject: f[2], Server: f[3], Method: f[4], Name: f[5], Expires: exp}, nil
}
