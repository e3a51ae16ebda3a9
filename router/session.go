package router

import (
	"bytes"
	"container/list"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// session is what a client's Mcp-Session-Id carries, sealed: any replica
// holding the keys can open it, so no store is shared.
type session struct {
	ID      string                     `json:"i"`            // random, names the session in per-replica caches
	Issuer  string                     `json:"is,omitempty"` // the caller it belongs to: issuer and subject
	Subject string                     `json:"s,omitempty"`
	Version string                     `json:"v"`           // protocol version negotiated with the client
	Issued  int64                      `json:"t"`           // unix seconds
	Up      map[string]upstreamSession `json:"u,omitempty"` // server name -> its session opened at initialize
	Client  json.RawMessage            `json:"c,omitempty"` // the client's capabilities and clientInfo, to open late upstreams

	scope string // key(), computed once: by open and initialize, before goroutines share the session
}

// key names the session in this replica's maps (upstream sessions, calls in
// flight, GET streams): its random id and the caller it belongs to, so that
// nothing kept for one caller is ever found with another's.
func (s *session) key() string {
	if s.scope == "" {
		s.scope = s.ID + "\x00" + strconv.Itoa(len(s.Issuer)) + ":" + s.Issuer + s.Subject
	}
	return s.scope
}

// belongsTo reports whether the session is the caller's: the same subject
// of the same issuer (two issuers may name different users alike).
func (s *session) belongsTo(issuer, subject string) bool {
	return s.Issuer == issuer && s.Subject == subject
}

// upstreamSession is one upstream's session id and protocol version; the id
// is "" for a server that keeps no sessions.
type upstreamSession struct {
	ID      string `json:"i,omitempty"`
	Version string `json:"v"`
}

var (
	errSession      = errors.New("router: unknown session")
	errSessionEnded = errors.New("router: session ended")
)

// sessionAAD binds sealed ids to their use.
var sessionAAD = []byte("mcp-authz/router/session/v1")

// maxSessionID bounds the Mcp-Session-Id a client may present.
const maxSessionID = 16 << 10

// sealer seals session ids with the first key and opens them with any.
type sealer struct{ aeads []cipher.AEAD }

func loadSealer(files []string) (*sealer, error) {
	var keys [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("router: session key: %w", err)
		}
		k, err := parseSessionKey(data)
		if err != nil {
			return nil, fmt.Errorf("router: session key %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("router: session key: %w", err)
		}
		keys = append(keys, k)
	}
	return newSealer(keys)
}

// parseSessionKey accepts 32 bytes, raw or base64 (standard or URL).
func parseSessionKey(data []byte) ([]byte, error) {
	text := bytes.TrimSpace(data)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(string(text)); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	if len(data) == 32 {
		return data, nil
	}
	return nil, errors.New("want 32 bytes, raw or base64")
}

func newSealer(keys [][]byte) (*sealer, error) {
	s := &sealer{}
	for _, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("router: session key: %w", err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("router: session key: %w", err)
		}
		s.aeads = append(s.aeads, a)
	}
	return s, nil
}

func (s *sealer) seal(v *session) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("router: seal session: %w", err)
	}
	a := s.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("router: seal session: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plain, sessionAAD)), nil
}

func (s *sealer) open(id string) (*session, error) {
	if id == "" || len(id) > maxSessionID {
		return nil, errSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil, errSession
	}
	for _, a := range s.aeads {
		if len(raw) < a.NonceSize()+a.Overhead() {
			return nil, errSession
		}
		plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], sessionAAD)
		if err != nil {
			continue
		}
		var v session
		if err := json.Unmarshal(plain, &v); err != nil || v.ID == "" || v.Version == "" {
			return nil, errSession
		}
		v.key() // before any goroutine reads it
		return &v, nil
	}
	return nil, errSession
}

// lru is a bounded map that forgets the least recently used entry.
type lru[V any] struct {
	max int
	mu  sync.Mutex
	ll  *list.List
	m   map[string]*list.Element
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *lru[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		e.Value.(*lruEntry[V]).val = v
		c.ll.MoveToFront(e)
		return
	}
	c.m[key] = c.ll.PushFront(&lruEntry[V]{key: key, val: v})
	if c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*lruEntry[V]).key)
	}
}

func (c *lru[V]) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.Remove(e)
		delete(c.m, key)
	}
}
