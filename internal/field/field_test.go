package field

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnder(t *testing.T) {
	tests := []struct {
		name   string
		parent string
		err    error
		want   []string // the Error() of each error, in order
	}{
		{name: "nil", parent: "a", err: nil},
		{name: "a field", parent: "identity", err: Errorf("issuers[1].issuerURL", "must be https"), want: []string{"identity.issuers[1].issuerURL: must be https"}},
		{name: "an item", parent: "servers", err: Errorf("[2].url", "is required"), want: []string{"servers[2].url: is required"}},
		{name: "the whole config", parent: "gateway", err: Errorf("", "no"), want: []string{"gateway: no"}},
		{name: "not located", parent: "exchange", err: errors.New("bad"), want: []string{"exchange: bad"}},
		{name: "joined", parent: "authz", err: errors.Join(Errorf("maxBodyBytes", "x"), Errorf("listen", "y")), want: []string{"authz.maxBodyBytes: x", "authz.listen: y"}},
		{name: "no parent", parent: "", err: Errorf("servers[0].name", "z"), want: []string{"servers[0].name: z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Under(tt.parent, tt.err)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("Under = %v, want nil", got)
				}
				return
			}
			var msgs []string
			errs := []error{got}
			if j, ok := got.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var fe *Error
				if !errors.As(e, &fe) {
					t.Errorf("%v is not a field.Error", e)
				}
				msgs = append(msgs, e.Error())
			}
			if diff := cmp.Diff(tt.want, msgs); diff != "" {
				t.Errorf("Under (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorUnwraps(t *testing.T) {
	err := Under("router", Errorf("sessionKeyFiles[0]", "read: %w", fs.ErrNotExist))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not wrap fs.ErrNotExist", err)
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.Path != "router.sessionKeyFiles[0]" {
		t.Errorf("As(%v) = %+v, want path router.sessionKeyFiles[0]", err, fe)
	}
}
