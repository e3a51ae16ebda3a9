package envoy

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
)

// rejectingVerifier refuses every token as malformed.
type rejectingVerifier struct{}

func (rejectingVerifier) Verify(context.Context, string) (*identity.Identity, error) {
	return nil, identity.ErrMalformed
}

// TestCheckAnswers: what the core decides reaches Envoy whole over gRPC:
// the signed assertion as the last header set, replacing the client's; a
// 401 as UNAUTHENTICATED with its WWW-Authenticate challenge; the denial
// body byte for byte as Decision.Body writes it.
func TestCheckAnswers(t *testing.T) {
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signed := dial(t, newServer(t, authz.Config{}, authz.Deps{Policy: authztest.Engine(t), Signer: assertion.NewSigner(key)}))
	resp, err := signed.Check(t.Context(), checkRequest("POST", toolCall("kube_pods_list"), map[string]string{assertion.Header: "forged"}))
	if err != nil {
		t.Fatal(err)
	}
	set, remove := okHeaders(t, resp)
	headers := resp.GetOkResponse().GetHeaders()
	if last := headers[len(headers)-1].GetHeader(); last.GetKey() != assertion.Header || last.GetValue() == "forged" || set[assertion.Header] != last.GetValue() {
		t.Errorf("last header set %s: %q, want the signed %s", last.GetKey(), last.GetValue(), assertion.Header)
	}
	if _, err := assertion.NewVerifier(key).Verify(set[assertion.Header], []byte(toolCall("kube_pods_list")), time.Now()); err != nil {
		t.Errorf("assertion does not verify: %v", err)
	}
	if len(remove) != 0 {
		t.Errorf("headers_to_remove %q, want none (the assertion is overwritten)", remove)
	}

	core, err := authz.New(authz.Config{}, authz.Deps{Registry: authztest.Registry(t), Policy: authztest.Engine(t), Verifier: rejectingVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	req := checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"authorization": "Bearer x"})
	resp, err = dial(t, New(Config{}, core)).Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := core.Decide(t.Context(), &authz.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Scheme: "http",
		Headers: req.GetAttributes().GetRequest().GetHttp().GetHeaders(), Body: []byte(toolCall("kube_pods_list"))})
	status, _, h := denial(t, resp)
	if status != http.StatusUnauthorized || resp.GetStatus().GetCode() != int32(code.Code_UNAUTHENTICATED) {
		t.Errorf("status %d, gRPC code %d, want 401 UNAUTHENTICATED", status, resp.GetStatus().GetCode())
	}
	if want.Challenge == "" || h.Get("www-authenticate") != want.Challenge {
		t.Errorf("www-authenticate %q, want %q", h.Get("www-authenticate"), want.Challenge)
	}
	if diff := cmp.Diff(string(want.Body()), resp.GetDeniedResponse().GetBody()); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}
