package lru

import "testing"

// TestCache: the least recently used entry goes first, a Get or a Put
// makes an entry the most recently used, Remove forgets one.
func TestCache(t *testing.T) {
	c := New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("a = %d, %v", v, ok)
	}
	c.Put("c", 3) // b goes
	if _, ok := c.Get("b"); ok {
		t.Error("b kept past the bound although least recently used")
	}
	c.Put("a", 10) // an update, nothing goes
	if v, ok := c.Get("a"); !ok || v != 10 {
		t.Errorf("a = %d, %v after update", v, ok)
	}
	if v, ok := c.Get("c"); !ok || v != 3 {
		t.Errorf("c = %d, %v", v, ok)
	}
	c.Remove("c")
	if _, ok := c.Get("c"); ok {
		t.Error("c kept after Remove")
	}
	c.Remove("nothing") // no-op
}

// TestCacheAtLeastOne: a cache made with a bound below one holds one entry,
// as New says.
func TestCacheAtLeastOne(t *testing.T) {
	for _, tt := range []struct {
		name string
		max  int
	}{
		{name: "zero", max: 0},
		{name: "negative", max: -3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string, int](tt.max)
			c.Put("a", 1)
			if v, ok := c.Get("a"); !ok || v != 1 {
				t.Fatalf("a = %d, %v", v, ok)
			}
			c.Put("b", 2)
			if _, ok := c.Get("a"); ok {
				t.Error("a kept past a bound of one")
			}
		})
	}
}
