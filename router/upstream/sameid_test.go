package upstream

import (
	"encoding/json"
	"testing"
)

// TestSameID: an upstream's answer is matched to its call by the value of
// the id, however either spelled it.
func TestSameID(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{name: "escape", a: `"\u0061"`, b: `"a"`, same: true},
		{name: "escaped slash", a: `"a\/b"`, b: `"a/b"`, same: true},
		{name: "fraction zero", a: `1.0`, b: `1`, same: true},
		{name: "exponent", a: `1e2`, b: `100`, same: true},
		{name: "negative exponent", a: `1000e-3`, b: `1`, same: true},
		{name: "negative zero", a: `-0`, b: `0`, same: true},
		{name: "zero with exponent", a: `0e-999`, b: `0`, same: true},
		{name: "negative", a: `-12.00`, b: `-12`, same: true},
		{name: "string and number", a: `"1"`, b: `1`},
		{name: "different strings", a: `"a"`, b: `"b"`},
		{name: "case", a: `"A"`, b: `"a"`},
		{name: "different numbers", a: `1`, b: `2`},
		{name: "sign", a: `-1`, b: `1`},
		{name: "fraction", a: `1.5`, b: `1.5`},
		{name: "null", a: `null`, b: `null`},
		{name: "empty", a: ``, b: ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameID(json.RawMessage(tc.a), json.RawMessage(tc.b)); got != tc.same {
				t.Errorf("SameID(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.same)
			}
		})
	}
}
