package identity

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// retryAfterFailure is the least time between two attempts to fetch a
// discovery document or key set after a failed one: a provider that is
// down is not hammered, and is used again soon after it is back.
const retryAfterFailure = time.Second

// issuer is one configured issuer and its lazily discovered verifier.
type issuer struct {
	url        string
	audiences  []string
	algorithms []string
	client     *http.Client
	now        func() time.Time
	timing     timing

	gate gate
	// mu guards ver and keys.
	mu   sync.Mutex
	ver  *oidc.IDTokenVerifier
	keys *keySet
}

// timing holds the intervals of key-set and discovery fetches.
type timing struct {
	refresh time.Duration // least time between two key-set fetches
	maxAge  time.Duration // age past which a key set is fetched again
	timeout time.Duration // of one fetch
}

// newIssuer builds the verifier of one issuer; Config.Validate has checked c.
func newIssuer(c Issuer, client *http.Client, now func() time.Time, tm timing) *issuer {
	algs := c.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	iss := &issuer{
		url:        c.IssuerURL,
		audiences:  slices.Clone(c.Audiences),
		algorithms: slices.Clone(algs),
		client:     client,
		now:        now,
		timing:     tm,
	}
	if c.JWKSURL != "" {
		iss.ver, iss.keys = iss.newVerifier(c.JWKSURL)
	}
	return iss
}

func (i *issuer) newVerifier(jwksURL string) (*oidc.IDTokenVerifier, *keySet) {
	ks := &keySet{
		url:    jwksURL,
		client: i.client,
		now:    i.now,
		timing: i.timing,
	}
	for _, a := range i.algorithms {
		ks.algorithms = append(ks.algorithms, jose.SignatureAlgorithm(a))
	}
	return oidc.NewVerifier(i.url, ks, &oidc.Config{
		SupportedSigningAlgs: i.algorithms,
		// Audiences, exp and nbf are checked by Verifier.check with its
		// own clock and leeway, on cached tokens too.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
		Now:               i.now,
	}), ks
}

// verifier returns the issuer's verifier, discovering its key-set address
// first if need be. A failed discovery is retried on a later call.
func (i *issuer) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	i.mu.Lock()
	ver := i.ver
	i.mu.Unlock()
	if ver != nil {
		return ver, nil
	}
	ran, err := i.gate.run(ctx, i.now(), i.discover)
	if !ran {
		return nil, fmt.Errorf("%w: discovery failed recently", ErrUnavailable)
	}
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ver == nil {
		return nil, fmt.Errorf("%w: discovery failed", ErrUnavailable)
	}
	return i.ver, nil
}

// discover fetches the discovery document; it runs at most once at a time.
func (i *issuer) discover() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), i.timing.timeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, i.client), i.url)
	if err != nil {
		return retryAfterFailure, fmt.Errorf("%w: discovery: %w", ErrUnavailable, err)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil || checkURL(doc.JWKSURI) != nil {
		return retryAfterFailure, fmt.Errorf("%w: discovery: no valid jwks_uri", ErrUnavailable)
	}
	ver, keys := i.newVerifier(doc.JWKSURI)
	i.mu.Lock()
	i.ver, i.keys = ver, keys
	i.mu.Unlock()
	return 0, nil
}

// gate runs one fetch at a time, and no sooner than the previous fetch
// allows. Callers arriving during a fetch wait for its result.
type gate struct {
	mu   sync.Mutex
	next time.Time
	cur  *flight
	done *flight // the last fetch that ended
	last error   // of the last fetch, reported while the next waits
}

type flight struct {
	started time.Time
	done    chan struct{}
	err     error
}

// start starts fetch in the background unless one is running or the last
// one asked not to be repeated before now.
func (g *gate) start(now time.Time, fetch func() (time.Duration, error)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur == nil && !now.Before(g.next) {
		g.launch(now, fetch)
	}
}

// run starts fetch unless one is running (then it joins it) or the last
// one asked not to be repeated before now (then it reports ran false with
// the last fetch's error, so that an unreachable provider stays
// unavailable rather than its tokens invalid).
// fetch returns how long to wait before the next attempt. Fetches run
// detached from ctx: a caller giving up does not fail the others.
func (g *gate) run(ctx context.Context, now time.Time, fetch func() (time.Duration, error)) (ran bool, err error) {
	g.mu.Lock()
	f := g.cur
	if f == nil {
		if now.Before(g.next) {
			last := g.last
			g.mu.Unlock()
			return false, last
		}
		f = g.launch(now, fetch)
	}
	g.mu.Unlock()
	select {
	case <-ctx.Done():
		return true, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case <-f.done:
		return true, f.err
	}
}

// fresh reports the result of a fetch that started no earlier than since,
// so that it shows what the provider published when the caller needed it:
// it joins such a fetch in flight, waits out one that started before, and
// starts one as soon as the last fetch allows, waiting for that moment if it
// comes within wait and before ctx's deadline. It does not wait, and
// reports ran false, when the last fetch failed (with that error, so that
// an unreachable provider stays unavailable rather than its tokens invalid)
// or when the next fetch is further off (with a nil error).
// now is the clock of since and of the fetches' timing.
func (g *gate) fresh(ctx context.Context, since time.Time, now func() time.Time, wait time.Duration, fetch func() (time.Duration, error)) (ran bool, err error) {
	waited := false
	for {
		g.mu.Lock()
		if d := g.done; d != nil && !d.started.Before(since) {
			g.mu.Unlock()
			return true, d.err
		}
		t := now()
		f := g.cur
		var pause time.Duration
		switch {
		case f != nil:
		case !t.Before(g.next) || waited:
			// Having waited, the interval is over: start even if a
			// clock that tests hold still says otherwise.
			f = g.launch(t, fetch)
		case g.last != nil:
			last := g.last
			g.mu.Unlock()
			return false, last
		default:
			pause = g.next.Sub(t)
			if dl, ok := ctx.Deadline(); pause > wait || ok && time.Until(dl) < pause {
				g.mu.Unlock()
				return false, nil
			}
		}
		g.mu.Unlock()
		if f == nil {
			timer := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				timer.Stop()
				return true, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
			case <-timer.C:
			}
			waited = true
			continue
		}
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case <-f.done:
		}
		if f.started.Before(since) {
			continue // it may predate what the caller needs: wait for the next
		}
		return true, f.err
	}
}

// launch runs fetch in a new goroutine; g.mu is held.
func (g *gate) launch(now time.Time, fetch func() (time.Duration, error)) *flight {
	f := &flight{started: now, done: make(chan struct{})}
	g.cur = f
	go func() {
		wait, err := fetch()
		f.err = err
		g.mu.Lock()
		g.next = now.Add(wait)
		g.cur = nil
		g.done = f
		g.last = err
		g.mu.Unlock()
		close(f.done)
	}()
	return f
}
