package authz

import (
	"errors"
	"fmt"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/challenge"
	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("maxBodyBytes"). It reads AssertionKeyFile, if set;
// it reaches no network.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, field.Errorf("maxBodyBytes", "must not be negative, is %d", c.MaxBodyBytes))
	}
	if c.DecisionLogEvery < 0 {
		errs = append(errs, field.Errorf("decisionLogEvery", "must not be negative, is %d", c.DecisionLogEvery))
	}
	for i, sc := range c.Scopes {
		switch {
		case sc == "offline_access":
			errs = append(errs, field.Errorf(fmt.Sprintf("scopes[%d]", i), "offline_access is never advertised"))
		case !challenge.ScopeToken(sc):
			errs = append(errs, field.Errorf(fmt.Sprintf("scopes[%d]", i), "%q is not an RFC 6749 scope token", sc))
		}
	}
	if c.AssertionKeyFile != "" {
		if _, err := assertion.LoadKey(c.AssertionKeyFile); err != nil {
			errs = append(errs, &field.Error{Path: "assertionKeyFile", Err: err})
		}
	}
	errs = append(errs, c.origins().Validate())
	return errors.Join(errs...)
}
