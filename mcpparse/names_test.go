package mcpparse

import (
	"errors"
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct {
		name string
		obj  string
		want []string
		err  error
	}{
		{"members in order", `{"b":1,"a":{"x":"secret"},"c":[1]}`, []string{"b", "a", "c"}, nil},
		{"empty", `{}`, nil, nil},
		{"duplicate", `{"a":1,"a":2}`, nil, ErrInvalidRequest},
		{"not an object", `[1]`, nil, ErrInvalidRequest},
		{"malformed", `{"a":`, nil, ErrParse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Names([]byte(tt.obj), Options{})
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Names(%s) error %v, want %v", tt.obj, err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Names(%s) = %q, want %q", tt.obj, got, tt.want)
			}
		})
	}
}
