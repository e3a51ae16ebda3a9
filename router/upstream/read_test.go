package upstream

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
)

// TestMediaType: the media type as mime.ParseMediaType reads a valid
// Content-Type; what it refuses matches neither type the router serves.
func TestMediaType(t *testing.T) {
	for _, v := range []string{
		"application/json", "application/json; charset=utf-8", " Application/JSON ;charset=UTF-8",
		"text/event-stream", "TEXT/EVENT-STREAM", "text/event-stream;", "", "application/json garbage",
		"application/ json", "text/html", "application/json; charset", "application/jsonx",
	} {
		t.Run(v, func(t *testing.T) {
			got := MediaType(http.Header{"Content-Type": {v}})
			want, _, err := mime.ParseMediaType(v)
			if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
				if got == "application/json" || got == "text/event-stream" {
					t.Fatalf("MediaType(%q) = %q, which mime refuses (%v)", v, got, err)
				}
				return
			}
			if got != want {
				t.Fatalf("MediaType(%q) = %q, want %q", v, got, want)
			}
		})
	}
}

// TestReadBody: an answer is read whole within the limit, whether or not
// its length was said; one over it, or shorter than it said, is refused.
func TestReadBody(t *testing.T) {
	const max = 16
	tests := []struct {
		name    string
		body    string
		length  int64 // Content-Length; -1 unknown
		wantErr bool
	}{
		{name: "length said", body: `{"a":1}`, length: 7},
		{name: "length unknown", body: `{"a":1}`, length: -1},
		{name: "at the limit", body: strings.Repeat("x", max), length: max},
		{name: "at the limit, unknown", body: strings.Repeat("x", max), length: -1},
		{name: "over the limit, said", body: strings.Repeat("x", max+1), length: max + 1, wantErr: true},
		{name: "over the limit, unknown", body: strings.Repeat("x", max+1), length: -1, wantErr: true},
		{name: "truncated", body: `{"a"`, length: 7, wantErr: true},
		{name: "empty", body: "", length: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{Body: io.NopCloser(strings.NewReader(tc.body)), ContentLength: tc.length}
			b, err := readBody(resp, max)
			if (err != nil) != tc.wantErr {
				t.Fatalf("readBody: %q, %v; want error %v", b, err, tc.wantErr)
			}
			if err == nil && string(b) != tc.body {
				t.Fatalf("read %q, want %q", b, tc.body)
			}
		})
	}
}
