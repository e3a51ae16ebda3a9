package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponseBytes bounds a token-endpoint answer.
const maxResponseBytes = 1 << 20

// response is the part of a token-exchange answer (RFC 8693 section 2.2)
// that is used.
type response struct {
	AccessToken      string      `json:"access_token"`
	IssuedTokenType  string      `json:"issued_token_type"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        json.Number `json:"expires_in"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`

	expiresIn time.Duration
}

// Grant types of the token requests.
const (
	grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// post makes the step's token request with subject (of subjectType) as
// its input and checks the answer's shape. scopes override the step's own
// when not nil (the default profile's Request.Scopes).
func (s *step) post(ctx context.Context, subject, subjectType string, r Request, scopes []string, now time.Time) (*response, error) {
	if scopes == nil {
		scopes = s.scopes
	}
	form := url.Values{}
	switch s.grant {
	case GrantJWTBearer:
		form.Set("grant_type", grantTypeJWTBearer)
		form.Set("assertion", subject)
		if s.audience != "" {
			form.Set("audience", s.audience)
		}
	default:
		audience := s.audience
		if audience == "" {
			audience = r.Audience
		}
		form.Set("grant_type", grantType)
		form.Set("subject_token", subject)
		form.Set("subject_token_type", subjectType)
		form.Set("requested_token_type", s.requested)
		form.Set("audience", audience)
		if s.actorFile != "" {
			actor, err := readFile(s.actorFile)
			if err != nil {
				return nil, fmt.Errorf("%w: actor token: %w", ErrUnavailable, err)
			}
			form.Set("actor_token", actor)
			form.Set("actor_token_type", s.actorType)
		}
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	resource := s.resource
	if resource == "" {
		resource = r.Resource
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	h := http.Header{}
	if err := s.cred.apply(form, h, now); err != nil {
		return nil, fmt.Errorf("%w: client authentication: %w", ErrUnavailable, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: building the request", ErrUnavailable)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, cause(ctx, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, cause(ctx, err))
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("%w: answer over %d bytes", ErrUnavailable, maxResponseBytes)
	}
	return parse(resp.StatusCode, body, subject, s.issued)
}

// cause is a safe description of a transport error: url.Error carries
// only the token URL, never the form.
func cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func parse(status int, body []byte, subject, requested string) (*response, error) {
	if status >= 500 || status == http.StatusTooManyRequests {
		return nil, fmt.Errorf("%w: status %d", ErrUnavailable, status)
	}
	var res response
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("%w: status %d, answer is not a JSON object", ErrUnavailable, status)
	}
	if res.Error != "" {
		return nil, &RetrieveError{
			StatusCode:       status,
			ErrorCode:        printable(res.Error, 64),
			ErrorDescription: description(res.ErrorDescription, subject),
		}
	}
	switch {
	case status != http.StatusOK:
		return nil, fmt.Errorf("%w: status %d without an error code", ErrUnavailable, status)
	case res.AccessToken == "":
		return nil, fmt.Errorf("%w: answer without access_token", ErrUnavailable)
	case !strings.EqualFold(res.TokenType, "Bearer") && res.TokenType != "N_A":
		return nil, fmt.Errorf("%w: token_type is not Bearer", ErrUnavailable)
	case res.IssuedTokenType != "" && res.IssuedTokenType != requested:
		return nil, fmt.Errorf("%w: issued_token_type is not the requested one", ErrUnavailable)
	}
	if res.ExpiresIn != "" {
		n, err := res.ExpiresIn.Int64()
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: expires_in is not a positive integer", ErrUnavailable)
		}
		res.expiresIn = time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	return &res, nil
}

// printable returns s if it is at most max bytes of RFC 6749's error
// characters (%x20-21 / %x23-5B / %x5D-7E), else "".
func printable(s string, max int) string {
	if len(s) > max {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return s
}

// description keeps an error_description that is printable, at most 256
// bytes, and does not echo the subject token.
func description(s, subject string) string {
	s = printable(s, 256)
	if s != "" && strings.Contains(s, subject) {
		return ""
	}
	return s
}
