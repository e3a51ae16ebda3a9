package jsonscan

import (
	"bytes"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestFoldRune checks, for every rune, that foldRune stands for its simple
// folding orbit: one rune per orbit, of that orbit, and a fixed point.
func TestFoldRune(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		f := foldRune(r)
		if foldRune(f) != f {
			t.Fatalf("foldRune(%U) = %U, not a fixed point", r, f)
		}
		if !bytes.EqualFold(utf8.AppendRune(nil, r), utf8.AppendRune(nil, f)) {
			t.Fatalf("foldRune(%U) = %U, outside its orbit", r, f)
		}
		for g := unicode.SimpleFold(r); g != r; g = unicode.SimpleFold(g) {
			if foldRune(g) != f {
				t.Fatalf("foldRune(%U) = %U, foldRune(%U) = %U: one orbit", r, f, g, foldRune(g))
			}
		}
	}
}

// TestPlain8 checks the eight-byte test against the byte table for every
// pair of byte values, in a few pairs of positions (borrows run upwards).
func TestPlain8(t *testing.T) {
	for _, pos := range [][2]int{{0, 1}, {0, 7}, {3, 4}, {6, 7}} {
		for c1 := range 256 {
			for c2 := range 256 {
				b := []byte("aaaaaaaa")
				b[pos[0]], b[pos[1]] = byte(c1), byte(c2)
				x := uint64(0)
				for i := 7; i >= 0; i-- {
					x = x<<8 | uint64(b[i])
				}
				if got, want := plain8(x), plain[c1] && plain[c2]; got != want {
					t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}
