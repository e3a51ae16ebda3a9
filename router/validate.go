package router

import (
	"errors"
	"fmt"
	"os"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/origin"
	"github.com/mcp-authz/mcp-authz/internal/seal"
)

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("sessionKeyFiles[1]"). It reads the key files c
// names; it reaches no network. That an assertion key is given at all is
// checked by New: in one process with authz, the key comes from authz, not
// from the configuration.
func (c Config) Validate() error {
	var errs []error
	for i, f := range c.SessionKeyFiles {
		path := fmt.Sprintf("sessionKeyFiles[%d]", i)
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, &field.Error{Path: path, Err: err})
			continue
		}
		if _, err := seal.ParseKey(data); err != nil {
			errs = append(errs, &field.Error{Path: path, Err: fmt.Errorf("%s: %w", f, err)})
		}
	}
	if c.AssertionKeyFile != "" {
		if _, err := assertion.LoadKey(c.AssertionKeyFile); err != nil {
			errs = append(errs, &field.Error{Path: "assertionKeyFile", Err: err})
		}
	}
	for _, n := range []struct {
		key string
		v   int64
	}{
		{"maxListBytes", c.MaxListBytes}, {"maxListItems", int64(c.MaxListItems)},
		{"maxAggregateBytes", c.MaxAggregateBytes}, {"maxAggregateItems", int64(c.MaxAggregateItems)},
		{"listCacheBytes", c.ListCacheBytes}, {"maxInputRounds", int64(c.MaxInputRounds)},
		{"maxStreamsPerCaller", int64(c.MaxStreamsPerCaller)},
	} {
		if n.v < 0 {
			errs = append(errs, field.Errorf(n.key, "must not be negative (0 means the default)"))
		}
	}
	if c.ResourceMetadata != nil {
		errs = append(errs, field.Under("resourceMetadata", c.ResourceMetadata.Validate()))
	}
	errs = append(errs, origin.Config{AllowedOrigins: c.AllowedOrigins, AllowedHosts: c.AllowedHosts}.Validate())
	return errors.Join(errs...)
}
