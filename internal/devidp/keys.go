package devidp

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// keyFile keeps the signing keys of a server's realms in one JSON file,
// {"<realm>": {"keys": [private JWKs, oldest first]}}, mode 0600, so tokens
// survive a restart. It holds private keys in clear: development only.
type keyFile struct {
	path string

	mu sync.Mutex // serializes read-modify-write of the file
}

func (f *keyFile) read() (map[string]jose.JSONWebKeySet, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]jose.JSONWebKeySet{}, nil
	}
	if err != nil {
		return nil, err
	}
	sets := map[string]jose.JSONWebKeySet{}
	if err := json.Unmarshal(b, &sets); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return sets, nil
}

// load returns the realm's keys, none when the file or the realm is missing.
func (f *keyFile) load(realm string) ([]*signingKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sets, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("devidp: keys: %w", err)
	}
	var keys []*signingKey
	for _, k := range sets[realm].Keys {
		priv, ok := k.Key.(*rsa.PrivateKey)
		if !ok || k.KeyID == "" || priv.Validate() != nil {
			return nil, fmt.Errorf("devidp: keys: %s: realm %s: key %q is not an RSA private key", f.path, realm, k.KeyID)
		}
		keys = append(keys, &signingKey{id: k.KeyID, key: priv})
	}
	return keys, nil
}

// save replaces the realm's keys in the file, written to a temporary file
// and renamed over it.
func (f *keyFile) save(realm string, keys []*signingKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sets, err := f.read()
	if err != nil {
		return fmt.Errorf("devidp: keys: %w", err)
	}
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"})
	}
	sets[realm] = set
	b, err := json.MarshalIndent(sets, "", "  ")
	if err != nil {
		return fmt.Errorf("devidp: keys: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".devidp-keys-*")
	if err != nil {
		return fmt.Errorf("devidp: keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("devidp: keys: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("devidp: keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devidp: keys: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("devidp: keys: %w", err)
	}
	return nil
}
