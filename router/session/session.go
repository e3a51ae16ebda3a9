// Package session is the record a client's Mcp-Session-Id carries, sealed,
// and the session-shaped view of a stateless request.
package session

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Versions are the protocol versions with sessions (initialize) the router
// speaks with clients, newest first.
var Versions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}

// Record is what a client's Mcp-Session-Id carries, sealed: any replica
// holding the keys can open it, so no store is shared. Upstream sessions
// are not in it: each replica opens its own with a server on first use.
type Record struct {
	ID      string // random, names the session in per-replica caches
	Issuer  string // the caller it belongs to: issuer and subject
	Subject string
	Version string // protocol version negotiated with the client
	Issued  int64  // unix seconds
	// Caps and Info are the client's capabilities and clientInfo (JSON, as
	// it sent them, or nil), to open upstream sessions on its behalf.
	Caps, Info json.RawMessage

	scope string // Key(), computed once: by open and initialize, before goroutines share the session
}

// Key names the session in this replica's maps (upstream sessions, calls in
// flight, GET streams): its random id and the caller it belongs to, so that
// nothing kept for one caller is ever found with another's. Call it once
// before goroutines share the record (Open and NewStateless do; a Record
// made otherwise, as initialize makes one, needs the call).
func (s *Record) Key() string {
	if s.scope == "" {
		s.scope = string(appendKey([]byte(s.ID), s.Issuer, s.Subject))
	}
	return s.scope
}

// appendKey appends to id what follows it in Record.Key: the caller.
func appendKey(id []byte, issuer, subject string) []byte {
	id = append(id, 0)
	id = strconv.AppendInt(id, int64(len(issuer)), 10)
	id = append(id, ':')
	id = append(id, issuer...)
	return append(id, subject...)
}

// BelongsTo reports whether the session is the caller's: the same subject
// of the same issuer (two issuers may name different users alike).
func (s *Record) BelongsTo(issuer, subject string) bool {
	return s.Issuer == issuer && s.Subject == subject
}

// Expiry is when s stops being valid, given the sessions' time to live.
func (s *Record) Expiry(ttl time.Duration) time.Time {
	return time.Unix(s.Issued, 0).Add(ttl)
}

// Stateless reports whether s is a stateless request's (NewStateless).
func (s *Record) Stateless() bool { return s.Version >= upstream.Stateless }

// LegacyVersion is the version the router initializes a session with a
// server of an earlier revision in, for a session of version v: v, or for
// a stateless caller the newest revision with sessions.
func LegacyVersion(v string) string {
	if v >= upstream.Stateless {
		return Versions[0]
	}
	return v
}

// NewStateless is the session-shaped view of one stateless request: never
// sealed nor sent to the client. Its ID is a digest of the version,
// capabilities and clientInfo, so that requests of one caller with the same
// ones share upstream sessions with servers of an earlier revision (the
// caller, issuer and subject, is in its key: see Record.Key), and requests
// with other capabilities never get a session initialized with these.
func NewStateless(issuer, subject, version string, issued time.Time, caps, info json.RawMessage) *Record {
	h := sha256.New()
	var n [4]byte
	for _, b := range [...][]byte{[]byte(version), caps, info} {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var sum [sha256.Size]byte
	s := &Record{
		Issuer:  issuer,
		Subject: subject,
		Version: version,
		Issued:  issued.Unix(),
	}
	// The id is the start of the key (Record.Key), sharing its memory;
	// caps and info, copied out of the request, share one buffer.
	id := base64.RawURLEncoding.AppendEncode([]byte("stateless."), h.Sum(sum[:0])[:18])
	key := string(appendKey(id, s.Issuer, s.Subject))
	s.ID, s.scope = key[:len(id)], key
	if len(caps)+len(info) > 0 {
		buf := append(append(make([]byte, 0, len(caps)+len(info)), caps...), info...)
		if len(caps) > 0 {
			s.Caps = buf[:len(caps):len(caps)]
		}
		if len(info) > 0 {
			s.Info = buf[len(caps):]
		}
	}
	return s
}

// RandomID is a new random id (128 bits, base64url): a session's ID, and
// the router's other handles.
func RandomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// format is the first byte of a sealed session: its encoding.
const format = 2

// marshal encodes s: the format byte, then each field, strings and JSON
// length-prefixed (uvarint), Issued a varint.
func (s *Record) marshal() []byte {
	b := make([]byte, 0, 1+6*binary.MaxVarintLen64+len(s.ID)+len(s.Issuer)+len(s.Subject)+len(s.Version)+len(s.Caps)+len(s.Info))
	b = append(b, format)
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

// unmarshal decodes what marshal encoded; nothing else is accepted.
func unmarshal(b []byte) (*Record, error) {
	if len(b) == 0 || b[0] != format {
		return nil, ErrUnknown
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
			return nil, ErrUnknown
		}
		strs[i] = string(f)
	}
	issued, k := binary.Varint(b)
	if k <= 0 {
		return nil, ErrUnknown
	}
	b = b[k:]
	caps, ok1 := field()
	info, ok2 := field()
	if !ok1 || !ok2 || len(b) != 0 {
		return nil, ErrUnknown
	}
	v := &Record{ID: strs[0], Issuer: strs[1], Subject: strs[2], Version: strs[3], Issued: issued}
	if len(caps) > 0 {
		v.Caps = json.RawMessage(bytes.Clone(caps))
	}
	if len(info) > 0 {
		v.Info = json.RawMessage(bytes.Clone(info))
	}
	if v.ID == "" || v.Version == "" {
		return nil, ErrUnknown
	}
	return v, nil
}

var (
	// ErrUnknown is a session id that does not open as a session.
	ErrUnknown = errors.New("session: unknown session")
	// ErrEnded is a session ended (DELETE) or expired.
	ErrEnded = errors.New("session: session ended")
)

// aad binds sealed ids to their use.
var aad = []byte("mcp-authz/router/session/v2")

// MaxID bounds the Mcp-Session-Id a client may present.
const MaxID = 16 << 10

// Sealer seals and opens records under an AAD of their use (seal.Sealer:
// the first key seals, any opens). Other records sealed with the same keys
// need an AAD of their own, as session ids have theirs.
type Sealer interface {
	Seal(plain, aad []byte) (string, error)
	Open(text string, aad []byte) ([]byte, error)
}

// Seal seals v into a session id.
func Seal(s Sealer, v *Record) (string, error) {
	id, err := s.Seal(v.marshal(), aad)
	if err != nil {
		return "", fmt.Errorf("session: seal: %w", err)
	}
	return id, nil
}

// Open opens a session id that Seal sealed; nothing else (ErrUnknown).
func Open(s Sealer, id string) (*Record, error) {
	if id == "" || len(id) > MaxID {
		return nil, ErrUnknown
	}
	plain, err := s.Open(id, aad)
	if err != nil {
		return nil, ErrUnknown
	}
	v, err := unmarshal(plain)
	if err != nil {
		return nil, err
	}
	v.Key() // before any goroutine reads it
	return v, nil
}
