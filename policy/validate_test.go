package policy

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// TestValidate checks that every problem of a policy set is named by its
// field, and a fault inside an inline source by its line there.
func TestValidate(t *testing.T) {
	type loc struct {
		Path string
		Line int
	}
	tests := []struct {
		name string
		c    Config
		want []loc
	}{
		{name: "valid", c: Config{Policies: []Policy{{Name: "a", CEL: "true"}, {Name: "b", Rego: "package mcp.authz\nallow := true\n"}}, Default: "allow"}},
		{name: "bad default", c: Config{Default: "permit"}, want: []loc{{"defaultPolicy", 0}}},
		{name: "no name", c: Config{Policies: []Policy{{CEL: "true"}}}, want: []loc{{"policies[0].name", 0}}},
		{name: "duplicate name", c: Config{Policies: []Policy{{Name: "p", CEL: "true"}, {Name: "p", CEL: "false"}}}, want: []loc{{"policies[1].name", 0}}},
		{name: "empty server", c: Config{Policies: []Policy{{Name: "p", CEL: "true", Servers: []string{"a/b", " "}}}}, want: []loc{{"policies[0].servers[1]", 0}}},
		{name: "two sources", c: Config{Policies: []Policy{{Name: "p", CEL: "true", Rego: "package x"}}}, want: []loc{{"policies[0]", 0}}},
		{name: "no source", c: Config{Policies: []Policy{{Name: "p"}}}, want: []loc{{"policies[0]", 0}}},
		{name: "query on cel", c: Config{Policies: []Policy{{Name: "p", CEL: "true", Query: "data.x"}}}, want: []loc{{"policies[0].query", 0}}},
		{name: "cel syntax on line 2", c: Config{Policies: []Policy{{Name: "p", CEL: "true &&\n  (\n"}}}, want: []loc{{"policies[0].cel", 3}}},
		{name: "cel not bool", c: Config{Policies: []Policy{{Name: "p", CEL: "1"}}}, want: []loc{{"policies[0].cel", 0}}},
		{name: "rego parse error on line 4", c: Config{Policies: []Policy{{Name: "r", Rego: "package mcp.authz\n\nallow if {\n  input.x ==\n}\n"}}}, want: []loc{{"policies[0].rego", 5}}},
		{name: "missing file", c: Config{Policies: []Policy{{Name: "f", File: "nowhere.rego"}}, BaseDir: t.TempDir()}, want: []loc{{"policies[0].file", 0}}},
		{name: "every problem at once", c: Config{Policies: []Policy{{Name: "", CEL: "1"}, {Name: "x", File: filepath.Join(t.TempDir(), "y.txt")}}, Default: "x"}, want: []loc{
			{"defaultPolicy", 0}, {"policies[0].name", 0}, {"policies[0].cel", 0}, {"policies[1].file", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			var got []loc
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *field.Error
					if !errors.As(e, &fe) {
						t.Fatalf("%v is not a field.Error", e)
					}
					got = append(got, loc{fe.Path, fe.Line})
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate locations (-want +got):\n%s\n%v", diff, err)
			}
			// Compile refuses what Validate refuses.
			if _, cerr := Compile(tt.c); (cerr == nil) != (err == nil) {
				t.Errorf("Compile: %v; Validate: %v", cerr, err)
			}
		})
	}
}
