package realms

import (
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

// LoadKeys returns the realm's keys, none when the file or the realm is
// missing (devidp.KeyStore).
func (f *keyFile) LoadKeys(realm string) ([]jose.JSONWebKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sets, err := f.read()
	if err != nil {
		return nil, err
	}
	return sets[realm].Keys, nil
}

// SaveKeys replaces the realm's keys in the file, written to a temporary
// file and renamed over it (devidp.KeyStore).
func (f *keyFile) SaveKeys(realm string, keys []jose.JSONWebKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sets, err := f.read()
	if err != nil {
		return err
	}
	sets[realm] = jose.JSONWebKeySet{Keys: keys}
	b, err := json.MarshalIndent(sets, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".devidp-keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}
