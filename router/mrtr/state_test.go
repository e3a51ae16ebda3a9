package mrtr

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/seal"
)

// TestState: a requestState opens only as what it was sealed as, and
// decodes only what marshal encoded.
func TestState(t *testing.T) {
	s, err := seal.New([][]byte{bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	st := State{Handle: "h", Issuer: "i", Subject: "s", Server: "ns/a", Method: "tools/call", Name: "x", Expires: 42}
	sealed, err := Seal(s, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(s, sealed); err != nil || got != st {
		t.Errorf("round trip: %+v %v", got, err)
	}
	other, err := s.Seal(st.marshal(), []byte("another use"))
	if err != nil {
		t.Fatal(err)
	}
	noHandle, err := Seal(s, State{Issuer: "i"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, text string }{
		{"sealed for another use", other},
		{"without a handle", noHandle},
		{"tampered", sealed[:len(sealed)-2] + "AA"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := Open(s, tc.text); !errors.Is(err, ErrState) {
				t.Errorf("opened %+v, %v", got, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"another format", []byte{2}},
		{"trailing byte", append(st.marshal(), 0)},
		{"truncated", st.marshal()[:5]},
		{"length past the end", []byte{stateFormat, 9, 'h'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := unmarshalState(tc.b); !errors.Is(err, ErrState) {
				t.Errorf("decoded %x: %+v", tc.b, got)
			}
		})
	}
}
