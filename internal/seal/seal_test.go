package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRotation: the first key seals, every key opens; a sealer without the
// sealing key, another use (AAD) and any change to the text are refused.
func TestRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	before, err := New([][]byte{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	after, err := New([][]byte{newKey, oldKey})
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("test/v1")
	sealedBefore, err := before.Seal([]byte("record"), aad)
	if err != nil {
		t.Fatal(err)
	}
	sealedAfter, err := after.Seal([]byte("record"), aad)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(sealedAfter)
	tampered[len(tampered)/2] ^= 1
	tests := []struct {
		name   string
		s      *Sealer
		text   string
		aad    []byte
		wantOK bool
	}{
		{name: "old key opens its own", s: before, text: sealedBefore, aad: aad, wantOK: true},
		{name: "rotated sealer opens the old", s: after, text: sealedBefore, aad: aad, wantOK: true},
		{name: "rotated sealer opens its own", s: after, text: sealedAfter, aad: aad, wantOK: true},
		{name: "old sealer never opens the new", s: before, text: sealedAfter, aad: aad},
		{name: "another use", s: after, text: sealedAfter, aad: []byte("test/v2")},
		{name: "tampered", s: after, text: string(tampered), aad: aad},
		{name: "not base64url", s: after, text: "a+b/", aad: aad},
		{name: "too short", s: after, text: "abcd", aad: aad},
		{name: "empty", s: after, aad: aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Open(tt.text, tt.aad)
			switch {
			case tt.wantOK && (err != nil || string(got) != "record"):
				t.Errorf("Open = %q, %v; want record", got, err)
			case !tt.wantOK && !errors.Is(err, ErrInvalid):
				t.Errorf("Open = %q, %v; want ErrInvalid", got, err)
			}
		})
	}
	if sealedAfter == sealedBefore {
		t.Error("two seals of one record are equal: the nonce is not random")
	}
}

// TestLoad: keys are read raw or base64; a short key or a missing file is
// an error, and no file at all is one random key.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0xfe}, 32)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw := write("raw", key)
	b64 := write("b64", []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	url := write("url", []byte(base64.RawURLEncoding.EncodeToString(key)))
	short := write("short", []byte("too short"))
	tests := []struct {
		name    string
		files   []string
		wantErr bool
	}{
		{name: "none: random", files: nil},
		{name: "raw", files: []string{raw}},
		{name: "base64 with a newline", files: []string{b64}},
		{name: "base64url", files: []string{url}},
		{name: "short", files: []string{raw, short}, wantErr: true},
		{name: "missing", files: []string{filepath.Join(dir, "nope")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.files)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load = %v, want error %v", err, tt.wantErr)
			}
			if err != nil || len(tt.files) == 0 {
				return
			}
			// Every form of the one key opens what the raw one sealed.
			ref, _ := New([][]byte{key})
			text, err := ref.Seal([]byte("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Open(text, nil); err != nil || string(got) != "x" {
				t.Errorf("Open = %q, %v", got, err)
			}
		})
	}
}
