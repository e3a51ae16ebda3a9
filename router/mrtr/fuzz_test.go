package mrtr

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// FuzzIDKey: idKey never panics, and what it accepts keeps its value: a
// string its decoded text, a number the integer JSON reads it as.
func FuzzIDKey(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u0061"`, `"a\/b"`, `1`, `-0`, `1.0`, `1e2`, `70E-1`, `1.5`, `9007199254740991`, `1e999999999`, `0e-5`, `null`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		key, ok := idKey(json.RawMessage(in))
		if !ok {
			return
		}
		var v any
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatalf("accepted %q, which is not JSON: %v", in, err)
		}
		switch v := v.(type) {
		case string:
			if key != "s"+v {
				t.Fatalf("%q: key %q, want the decoded string", in, key)
			}
		case float64:
			n, err := strconv.ParseInt(strings.TrimPrefix(key, "n"), 10, 64)
			if err != nil || !strings.HasPrefix(key, "n") || float64(n) != v || n > maxSafeID || n < -maxSafeID {
				t.Fatalf("%q: key %q, want the integer %v", in, key, v)
			}
		default:
			t.Fatalf("accepted %q, neither a string nor a number", in)
		}
	})
}
