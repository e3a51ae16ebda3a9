package identity

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/tlsclient"
)

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("issuers[1].issuerURL"). It reaches no network.
func (c Config) Validate() error {
	if len(c.Issuers) == 0 {
		return field.Errorf("issuers", "at least one issuer is required")
	}
	var errs []error
	seen := map[string]int{}
	for i, ic := range c.Issuers {
		at := func(f string) string { return fmt.Sprintf("issuers[%d]%s", i, f) }
		if err := checkURL(ic.IssuerURL); err != nil {
			errs = append(errs, &field.Error{Path: at(".issuerURL"), Err: err})
		} else if j, dup := seen[ic.IssuerURL]; dup {
			errs = append(errs, field.Errorf(at(".issuerURL"), "%q is also issuers[%d]", ic.IssuerURL, j))
		} else {
			seen[ic.IssuerURL] = i
		}
		if ic.JWKSURL != "" {
			if err := checkURL(ic.JWKSURL); err != nil {
				errs = append(errs, &field.Error{Path: at(".jwksURL"), Err: err})
			}
		}
		if len(ic.Audiences) == 0 || slices.Contains(ic.Audiences, "") {
			errs = append(errs, field.Errorf(at(".audiences"), "at least one non-empty audience is required"))
		}
		if ic.CAFile != "" {
			if _, err := tlsclient.ReadPool(nil, ic.CAFile); err != nil {
				errs = append(errs, &field.Error{Path: at(".caFile"), Err: err})
			}
		}
		for k, a := range ic.Algorithms {
			if !slices.Contains(allowedAlgorithms, a) {
				errs = append(errs, field.Errorf(at(fmt.Sprintf(".algorithms[%d]", k)), "%q is not allowed", a))
			}
		}
	}
	return errors.Join(errs...)
}
