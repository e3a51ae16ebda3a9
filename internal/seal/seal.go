// Package seal seals small records into opaque text with AES-256-GCM under
// rotating keys: the first key seals, any of them opens, so a key rotates
// by putting a new one first. Every holder of the keys opens what any other
// sealed, so replicas share records without a store.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
)

// ErrInvalid is text that none of the keys opens for its use: forged,
// damaged, sealed for another use, or under a key no longer held.
var ErrInvalid = errors.New("seal: invalid")

// Sealer seals with its first key and opens with any.
type Sealer struct{ aeads []cipher.AEAD }

// New returns a sealer of keys (each 32 bytes), the first sealing.
func New(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no key")
	}
	s := &Sealer{}
	for _, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal: key: %w", err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key: %w", err)
		}
		s.aeads = append(s.aeads, a)
	}
	return s, nil
}

// AEADs returns the sealer's keys as AEADs, the first sealing, for a format
// of its own that keeps other data beside the nonce (as internal/taskid's
// ids keep their route in the clear). Such a format needs an additional
// data of its own, as Seal's callers do.
func (s *Sealer) AEADs() []cipher.AEAD { return s.aeads }

// Load returns a sealer of the keys in files (see ParseKey), the first
// sealing; without files, of one random key (what it seals opens only in
// this process).
func Load(files []string) (*Sealer, error) {
	var keys [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("seal: key: %w", err)
		}
		k, err := ParseKey(data)
		if err != nil {
			return nil, fmt.Errorf("seal: key %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("seal: key: %w", err)
		}
		keys = append(keys, k)
	}
	return New(keys)
}

// ParseKey accepts 32 bytes, raw or base64 (standard or URL, padded or
// not).
func ParseKey(data []byte) ([]byte, error) {
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

// Seal returns plain sealed for one use, named by aad (which Open must be
// given alike), as unpadded base64url text.
func (s *Sealer) Seal(plain, aad []byte) (string, error) {
	a := s.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plain, aad)), nil
}

// Open returns what Seal sealed into text for the use aad, trying each key;
// anything else is ErrInvalid.
func (s *Sealer) Open(text string, aad []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, ErrInvalid
	}
	for _, a := range s.aeads {
		if len(raw) < a.NonceSize()+a.Overhead() {
			return nil, ErrInvalid
		}
		if plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], aad); err == nil {
			return plain, nil
		}
	}
	return nil, ErrInvalid
}
