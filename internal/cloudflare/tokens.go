package cloudflare

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// listPageSize is the largest page the list endpoint allows
// (reference/cloudflare-api.md, Endpoints: per_page 5–50).
const listPageSize = 50

// maxListPages bounds a listing: 100 full pages are ten times the largest
// quota (500 account tokens, reference/cloudflare-api.md, Errors and
// limits), so more means a server that ignores "page" and would keep the
// client listing, and growing the list, until its deadline.
const maxListPages = 100

// PermissionGroups lists every permission group the parent token may grant.
//
//	GET /user/tokens/permission_groups
//	GET /accounts/{account_id}/tokens/permission_groups
func (c *Client) PermissionGroups(ctx context.Context, ep token.Endpoint) ([]token.PermissionGroup, error) {
	opts, err := c.options(c.Token)
	if err != nil {
		return nil, err
	}
	var groups []token.PermissionGroup
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		groups, err = endpointFor(ep, opts).permissionGroups(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list permission groups: %w", err)
	}
	for _, g := range groups {
		// An id is sent back in a create and printed: one no real API gives
		// (a newline, a path) is no group to act on.
		if !token.IsHexID(g.ID) {
			return nil, fmt.Errorf("list permission groups: %w", badAnswer("a group id is missing or not 32 lowercase hex characters"))
		}
	}
	if len(groups) == 0 {
		// No real API lists none (a result null decodes to none): taken as
		// a catalogue, it would blame every scope of the request instead.
		return nil, fmt.Errorf("list permission groups: %w", badAnswer("the answer lists no permission groups"))
	}
	return groups, nil
}

// CreateToken creates a token. It is never repeated after an attempt whose
// outcome is unknown (no answer, a reset, a 5xx): the error then wraps
// token.ErrOutcomeUnknown and the caller must look the token up by its
// name. Only a 429, which the API answers before doing anything, is retried.
// An answer whose id or value no real API gives wraps token.ErrBadAnswer:
// a token may exist, and the caller finds it by name.
//
//	POST /user/tokens
//	POST /accounts/{account_id}/tokens
func (c *Client) CreateToken(ctx context.Context, ep token.Endpoint, spec token.Spec) (token.Created, error) {
	opts, err := c.options(c.Token)
	if err != nil {
		return token.Created{}, err
	}
	body := createBody{name: spec.Name, expiresOn: spec.ExpiresOn.UTC().Truncate(time.Second), allowedIPs: spec.AllowedIPs}
	for _, p := range spec.Policies {
		groups := make([]shared.TokenPolicyPermissionGroupParam, len(p.PermissionGroups))
		for j, id := range p.PermissionGroups {
			groups[j].ID.Value, groups[j].ID.Present = id, true
		}
		var pol shared.TokenPolicyParam
		pol.Effect.Value, pol.Effect.Present = shared.TokenPolicyEffect(p.Effect), true
		pol.PermissionGroups.Value, pol.PermissionGroups.Present = groups, true
		pol.Resources.Value, pol.Resources.Present = shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam(p.Resources), true
		body.policies = append(body.policies, pol)
	}
	warmEncoders() // see sdkrace.go
	var res created
	var lastErr error // how the last attempt sent ended: only it can have made a token
	err = c.do(ctx, create, func(ctx context.Context) error {
		res, err = endpointFor(ep, opts).create(ctx, body)
		lastErr = err
		return err
	})
	if err != nil {
		return token.Created{}, fmt.Errorf("create token %q: %w", spec.Name, unknownOutcome(lastErr, err))
	}
	t, err := info(res.token)
	if err == nil && !validValue(res.value) {
		err = badAnswer("the value is not shaped like a token")
	}
	if err != nil {
		// The API said yes, but the answer is not one to act on: the token
		// may exist, so the caller must find it by name.
		return token.Created{}, fmt.Errorf("create token %q: %w", spec.Name, err)
	}
	return token.Created{Info: t, Value: token.NewSecret(res.value)}, nil
}

// validValue reports whether v is shaped like a Cloudflare token value:
// letters, digits, "_", "-" and ".", at most 512 characters
// (reference/cloudflare-api.md, Responses: cfut_/cfat_ + 40 characters +
// checksum, or 40 alphanumerics). Anything else — a newline, a quote, a
// "$(…)" — is no token, and is never handed to a step, a shell or a log.
func validValue(v string) bool {
	if v == "" || len(v) > 512 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// RollToken gives an existing token a new value and returns it: the way to
// adopt a token whose create answer was lost.
//
//	PUT /user/tokens/{token_id}/value
//	PUT /accounts/{account_id}/tokens/{token_id}/value
func (c *Client) RollToken(ctx context.Context, ep token.Endpoint, id string) (token.Secret, error) {
	opts, err := c.options(c.Token)
	if err != nil {
		return token.Secret{}, err
	}
	warmEncoders() // see sdkrace.go
	var value string
	// Rolling again after a lost answer only rolls once more: the last value
	// that arrives is the one in force, so the call may be repeated.
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		value, err = endpointFor(ep, opts).roll(ctx, id)
		return err
	})
	if err != nil {
		return token.Secret{}, fmt.Errorf("roll token %s: %w", id, err)
	}
	if !validValue(value) {
		// A 2xx with result null decodes to "" without error; handing that
		// on as the token's value would give the caller an empty secret.
		return token.Secret{}, fmt.Errorf("roll token %s: %w", id, badAnswer("the value is missing or not shaped like a token"))
	}
	return token.NewSecret(value), nil
}

// GetToken reads one token.
//
//	GET /user/tokens/{token_id}
//	GET /accounts/{account_id}/tokens/{token_id}
func (c *Client) GetToken(ctx context.Context, ep token.Endpoint, id string) (token.Info, error) {
	opts, err := c.options(c.Token)
	if err != nil {
		return token.Info{}, err
	}
	var t *shared.Token
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		t, err = endpointFor(ep, opts).get(ctx, id)
		return err
	})
	if err != nil {
		return token.Info{}, fmt.Errorf("get token %s: %w", id, err)
	}
	got, err := info(*t)
	if err == nil && got.ID != id {
		err = badAnswer("it is about another token")
	}
	if err != nil {
		return token.Info{}, fmt.Errorf("get token %s: %w", id, err)
	}
	return got, nil
}

// info reads a token of an answer, refusing one whose id, account ids or
// permission-group ids no real API gives (a 2xx with result null decodes
// to a zero token without error): they are printed and sent back. A
// resource key names an account, every account ("*"), a zone of an account
// or a user (reference/cloudflare-api.md, Tokens); only the first two are
// accounts.
func info(t shared.Token) (token.Info, error) {
	if !token.IsHexID(t.ID) {
		return token.Info{}, badAnswer("the token id is missing or not 32 lowercase hex characters")
	}
	out := token.Info{ID: t.ID, Name: t.Name, Status: string(t.Status), IssuedOn: t.IssuedOn, ExpiresOn: t.ExpiresOn}
	for _, p := range t.Policies {
		if p.Effect != shared.TokenPolicyEffectAllow {
			continue
		}
		for _, g := range p.PermissionGroups {
			if !token.IsHexID(g.ID) {
				return token.Info{}, badAnswer("a permission group id is missing or not 32 lowercase hex characters")
			}
			out.Groups = append(out.Groups, token.PermissionGroup{ID: g.ID, Name: g.Name})
		}
		if res, ok := p.Resources.(shared.TokenPolicyResourcesIAMResourcesTypeObjectString); ok {
			for key := range res {
				id, ok := strings.CutPrefix(key, token.AccountScope+".")
				if !ok || strings.HasPrefix(id, "zone.") {
					continue // a user's or a zone's resource: no account
				}
				if id != "*" && !token.IsHexID(id) {
					return token.Info{}, badAnswer("an account id is not 32 lowercase hex characters")
				}
				out.AccountIDs = append(out.AccountIDs, id)
			}
		}
	}
	slices.Sort(out.AccountIDs) // from a map: give them an order
	return out, nil
}

// ListTokens lists every token of the endpoint, expired ones included
// (they count against the quota until deleted), page by page; each page is
// retried on its own.
//
//	GET /user/tokens?include_expired=true
//	GET /accounts/{account_id}/tokens?include_expired=true
func (c *Client) ListTokens(ctx context.Context, ep token.Endpoint) ([]token.Info, error) {
	opts, err := c.options(c.Token)
	if err != nil {
		return nil, err
	}
	// SDK v6.10.0 has no field for include_expired (reference/cloudflare-api.md).
	api := endpointFor(ep, append(opts, option.WithQuery("include_expired", "true")))
	var all []token.Info
	for page := 1; ; page++ {
		var items []shared.Token
		err := c.do(ctx, idempotent, func(ctx context.Context) error {
			items, err = api.list(ctx, page)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list tokens (page %d): %w", page, err)
		}
		for _, t := range items {
			got, err := info(t)
			if err != nil {
				return nil, fmt.Errorf("list tokens (page %d): %w", page, err)
			}
			all = append(all, got)
		}
		// Past the last page the result is empty; a short page is the last.
		if len(items) < listPageSize {
			return all, nil
		}
		if page >= maxListPages {
			return nil, fmt.Errorf("list tokens: still full after %d pages of %d; the API does not page", page, listPageSize)
		}
	}
}

// DeleteToken deletes a token. A 404 comes back as an error matching
// token.ErrNotFound: the caller decides whether "already gone" is fine.
//
//	DELETE /user/tokens/{token_id}
//	DELETE /accounts/{account_id}/tokens/{token_id}
func (c *Client) DeleteToken(ctx context.Context, ep token.Endpoint, id string) error {
	opts, err := c.options(c.Token)
	if err != nil {
		return err
	}
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		return endpointFor(ep, opts).delete(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	return nil
}

// VerifyToken asks the API about the token whose secret is given (the
// child, not the client's parent), with that secret as the credential: its
// id, status and expiry. The lifecycle checks a new token is active with
// it; the broker finds the id of a child a job presents. A secret the
// endpoint does not know — unknown, deleted, or another owner's — is a 401
// that matches token.ErrUnauthorized.
//
//	GET /user/tokens/verify
//	GET /accounts/{account_id}/tokens/verify
func (c *Client) VerifyToken(ctx context.Context, ep token.Endpoint, secret token.Secret) (token.Info, error) {
	opts, err := c.options(secret)
	if err != nil {
		return token.Info{}, err
	}
	var got token.Info
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		got, err = endpointFor(ep, opts).verify(ctx)
		return err
	})
	if err != nil {
		return token.Info{}, fmt.Errorf("verify token: %w", err)
	}
	switch {
	case got.Status != "active" && got.Status != "disabled" && got.Status != "expired":
		// A 2xx with result null decodes to an empty status without error.
		return token.Info{}, fmt.Errorf("verify token: %w", badAnswer("the status is missing or unknown"))
	case !token.IsHexID(got.ID):
		return token.Info{}, fmt.Errorf("verify token: %w", badAnswer("the id is missing or not 32 lowercase hex characters"))
	}
	got.ExpiresOn = got.ExpiresOn.UTC()
	return got, nil
}

// RunnerIP asks the API host's /cdn-cgi/trace which address this machine
// reaches it from: the address a token's IP condition sees. It goes through
// the same redirect refusal, classification, retries and debug lines as
// every other call, and sends no token.
//
//	GET /cdn-cgi/trace (on the API host, outside the base path)
func (c *Client) RunnerIP(ctx context.Context) (string, error) {
	hc, base, err := c.httpClient()
	if err != nil {
		return "", err
	}
	trace := *base
	trace.Path, trace.RawPath = "/cdn-cgi/trace", ""
	var ip string
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, trace.String(), nil)
		if err != nil {
			return err
		}
		if c.UserAgent != "" {
			req.Header.Set("User-Agent", c.UserAgent)
		}
		res, err := c.classify(req, hc.Do)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBodySize))
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "ip="); ok {
				ip = strings.TrimSpace(v)
				return nil
			}
		}
		return badAnswer("GET /cdn-cgi/trace: no ip= line in the answer")
	})
	if err != nil {
		return "", fmt.Errorf("look up the runner's address: %w", err)
	}
	return ip, nil
}
