package router

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	lrucache "github.com/mcp-authz/mcp-authz/internal/lru"
	"github.com/mcp-authz/mcp-authz/internal/seal"
)

// session is what a client's Mcp-Session-Id carries, sealed: any replica
// holding the keys can open it, so no store is shared. Upstream sessions
// are not in it: each replica opens its own with a server on first use.
type session struct {
	ID      string // random, names the session in per-replica caches
	Issuer  string // the caller it belongs to: issuer and subject
	Subject string
	Version string // protocol version negotiated with the client
	Issued  int64  // unix seconds
	// Caps and Info are the client's capabilities and clientInfo (JSON, as
	// it sent them, or nil), to open upstream sessions on its behalf.
	Caps, Info json.RawMessage

	scope string // key(), computed once: by open and initialize, before goroutines share the session
}

// key names the session in this replica's maps (upstream sessions, calls in
// flight, GET streams): its random id and the caller it belongs to, so that
// nothing kept for one caller is ever found with another's.
func (s *session) key() string {
	if s.scope == "" {
		s.scope = string(appendKey([]byte(s.ID), s.Issuer, s.Subject))
	}
	return s.scope
}

// appendKey appends to id what follows it in session.key: the caller.
func appendKey(id []byte, issuer, subject string) []byte {
	id = append(id, 0)
	id = strconv.AppendInt(id, int64(len(issuer)), 10)
	id = append(id, ':')
	id = append(id, issuer...)
	return append(id, subject...)
}

// belongsTo reports whether the session is the caller's: the same subject
// of the same issuer (two issuers may name different users alike).
func (s *session) belongsTo(issuer, subject string) bool {
	return s.Issuer == issuer && s.Subject == subject
}

// sessionFormat is the first byte of a sealed session: its encoding.
const sessionFormat = 2

// marshal encodes s: the format byte, then each field, strings and JSON
// length-prefixed (uvarint), Issued a varint.
func (s *session) marshal() []byte {
	b := make([]byte, 0, 1+6*binary.MaxVarintLen64+len(s.ID)+len(s.Issuer)+len(s.Subject)+len(s.Version)+len(s.Caps)+len(s.Info))
	b = append(b, sessionFormat)
	for _, f := range []string{s.ID, s.Issuer, s.Subject, s.Version} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendVarint(b, s.Issued)
	for _, f := range [][]byte{s.Caps, s.Info} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// unmarshalSession decodes what marshal encoded; nothing else is accepted.
func unmarshalSession(b []byte) (*session, error) {
	if len(b) == 0 || b[0] != sessionFormat {
		return nil, errSession
	}
	b = b[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		f := b[k : k+int(n)]
		b = b[k+int(n):]
		return f, true
	}
	var strs [4]string
	for i := range strs {
		f, ok := field()
		if !ok {
			return nil, errSession
		}
		strs[i] = string(f)
	}
	issued, k := binary.Varint(b)
	if k <= 0 {
		return nil, errSession
	}
	b = b[k:]
	caps, ok1 := field()
	info, ok2 := field()
	if !ok1 || !ok2 || len(b) != 0 {
		return nil, errSession
	}
	v := &session{ID: strs[0], Issuer: strs[1], Subject: strs[2], Version: strs[3], Issued: issued}
	if len(caps) > 0 {
		v.Caps = json.RawMessage(bytes.Clone(caps))
	}
	if len(info) > 0 {
		v.Info = json.RawMessage(bytes.Clone(info))
	}
	if v.ID == "" || v.Version == "" {
		return nil, errSession
	}
	return v, nil
}

var (
	errSession      = errors.New("router: unknown session")
	errSessionEnded = errors.New("router: session ended")
)

// sessionAAD binds sealed ids to their use.
var sessionAAD = []byte("mcp-authz/router/session/v2")

// maxSessionID bounds the Mcp-Session-Id a client may present.
const maxSessionID = 16 << 10

// sealer seals session ids (see seal.Sealer: the first key seals, any
// opens). Other records sealed with it need an AAD of their own, as
// sessionAAD binds session ids: Seal(plain, aad) and Open(text, aad).
type sealer struct{ *seal.Sealer }

func loadSealer(files []string) (*sealer, error) {
	s, err := seal.Load(files)
	if err != nil {
		return nil, fmt.Errorf("router: session ids: %w", err)
	}
	return &sealer{s}, nil
}

func newSealer(keys [][]byte) (*sealer, error) {
	s, err := seal.New(keys)
	if err != nil {
		return nil, fmt.Errorf("router: session ids: %w", err)
	}
	return &sealer{s}, nil
}

func (s *sealer) seal(v *session) (string, error) {
	id, err := s.Seal(v.marshal(), sessionAAD)
	if err != nil {
		return "", fmt.Errorf("router: seal session: %w", err)
	}
	return id, nil
}

func (s *sealer) open(id string) (*session, error) {
	if id == "" || len(id) > maxSessionID {
		return nil, errSession
	}
	plain, err := s.Open(id, sessionAAD)
	if err != nil {
		return nil, errSession
	}
	v, err := unmarshalSession(plain)
	if err != nil {
		return nil, err
	}
	v.key() // before any goroutine reads it
	return v, nil
}

// lru is a bounded map that forgets the least recently used entry (see
// lru.Cache).
type lru[V any] struct{ c *lrucache.Cache[V] }

func newLRU[V any](max int) *lru[V] { return &lru[V]{lrucache.New[V](max)} }

func (c *lru[V]) get(key string) (V, bool) { return c.c.Get(key) }
func (c *lru[V]) put(key string, v V)      { c.c.Put(key, v) }
