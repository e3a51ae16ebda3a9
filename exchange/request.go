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

	"golang.org/x/oauth2"
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

// post makes the exchange request and checks the answer's shape.
func (c *Client) post(ctx context.Context, r Request, scopes []string) (*response, error) {
	form := url.Values{
		"grant_type":           {grantType},
		"subject_token":        {r.SubjectToken},
		"subject_token_type":   {TokenTypeAccessToken},
		"requested_token_type": {c.requested},
		"audience":             {r.Audience},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if r.Resource != "" {
		form.Set("resource", r.Resource)
	}
	if c.authStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", c.clientID)
		form.Set("client_secret", c.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: building the request", ErrUnavailable)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.authStyle == oauth2.AuthStyleInHeader {
		// RFC 6749 section 2.3.1: id and secret are form-urlencoded
		// before they are joined and base64-encoded.
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	}
	resp, err := c.client.Do(req)
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
	return parse(resp.StatusCode, body, r.SubjectToken, c.requested)
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
