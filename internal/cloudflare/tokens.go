package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// The SDK's request fields are param.Field values from a package of the
// SDK's internal tree: this package sets them through their exported Value
// and Present fields instead of the SDK root's F helper, because importing
// the root links every one of the SDK's ~115 services into the binary
// (18 MB instead of a few).

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
	err = c.do(ctx, true, func(ctx context.Context) error {
		groups = groups[:0]
		if ep.IsAccount() {
			var params accounts.TokenPermissionGroupListParams
			params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
			page, err := accounts.NewTokenPermissionGroupService(opts...).List(ctx, params)
			if err != nil {
				return err
			}
			for _, g := range page.Result {
				groups = append(groups, token.PermissionGroup{ID: g.ID, Name: g.Name, Scopes: scopes(g.Scopes)})
			}
			return nil
		}
		page, err := user.NewTokenPermissionGroupService(opts...).List(ctx, user.TokenPermissionGroupListParams{})
		if err != nil {
			return err
		}
		for _, g := range page.Result {
			groups = append(groups, token.PermissionGroup{ID: g.ID, Name: g.Name, Scopes: scopes(g.Scopes)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list permission groups: %w", err)
	}
	return groups, nil
}

func scopes[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// CreateToken creates a token. It is never repeated after an attempt whose
// outcome is unknown (no answer, a reset, a 5xx): the error then wraps
// token.ErrOutcomeUnknown and the caller must look the token up by its
// name. Only a 429, which the API answers before doing anything, is retried.
//
//	POST /user/tokens
//	POST /accounts/{account_id}/tokens
func (c *Client) CreateToken(ctx context.Context, ep token.Endpoint, spec token.Spec) (token.Created, error) {
	opts, err := c.options(c.Token)
	if err != nil {
		return token.Created{}, err
	}
	policies := make([]shared.TokenPolicyParam, len(spec.Policies))
	for i, p := range spec.Policies {
		groups := make([]shared.TokenPolicyPermissionGroupParam, len(p.PermissionGroups))
		for j, id := range p.PermissionGroups {
			groups[j].ID.Value, groups[j].ID.Present = id, true
		}
		pol := &policies[i]
		pol.Effect.Value, pol.Effect.Present = shared.TokenPolicyEffect(p.Effect), true
		pol.PermissionGroups.Value, pol.PermissionGroups.Present = groups, true
		pol.Resources.Value, pol.Resources.Present = shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam(p.Resources), true
	}
	warmEncoders() // see sdkrace.go
	expires := spec.ExpiresOn.UTC().Truncate(time.Second)
	var created token.Created
	err = c.do(ctx, false, func(ctx context.Context) error {
		if ep.IsAccount() {
			var params accounts.TokenNewParams
			params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
			params.Name.Value, params.Name.Present = spec.Name, true
			params.Policies.Value, params.Policies.Present = policies, true
			params.ExpiresOn.Value, params.ExpiresOn.Present = expires, true
			if len(spec.AllowedIPs) > 0 {
				var ip accounts.TokenNewParamsConditionRequestIP
				ip.In.Value, ip.In.Present = spec.AllowedIPs, true
				params.Condition.Value.RequestIP.Value, params.Condition.Value.RequestIP.Present = ip, true
				params.Condition.Present = true
			}
			res, err := accounts.NewTokenService(opts...).New(ctx, params)
			if err != nil {
				return err
			}
			created = token.Created{Info: token.Info{ID: res.ID, Name: res.Name, Status: string(res.Status), ExpiresOn: res.ExpiresOn}, Value: token.NewSecret(res.Value)}
			return nil
		}
		var params user.TokenNewParams
		params.Name.Value, params.Name.Present = spec.Name, true
		params.Policies.Value, params.Policies.Present = policies, true
		params.ExpiresOn.Value, params.ExpiresOn.Present = expires, true
		if len(spec.AllowedIPs) > 0 {
			var ip user.TokenNewParamsConditionRequestIP
			ip.In.Value, ip.In.Present = spec.AllowedIPs, true
			params.Condition.Value.RequestIP.Value, params.Condition.Value.RequestIP.Present = ip, true
			params.Condition.Present = true
		}
		res, err := user.NewTokenService(opts...).New(ctx, params)
		if err != nil {
			return err
		}
		created = token.Created{Info: token.Info{ID: res.ID, Name: res.Name, Status: string(res.Status), ExpiresOn: res.ExpiresOn}, Value: token.NewSecret(res.Value)}
		return nil
	})
	if err != nil {
		return token.Created{}, fmt.Errorf("create token %q: %w", spec.Name, unknownOutcome(err))
	}
	if created.ID == "" || created.Value.IsZero() {
		// The API said yes but the answer lacks what we need: the token may
		// exist, so the caller must find it by name like any lost answer.
		return token.Created{}, fmt.Errorf("create token %q: the answer has no id or value: %w", spec.Name, token.ErrOutcomeUnknown)
	}
	return created, nil
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
	var value string
	// Rolling again after a lost answer only rolls once more: the last value
	// that arrives is the one in force, so the call may be repeated.
	err = c.do(ctx, true, func(ctx context.Context) error {
		var res *string
		var err error
		if ep.IsAccount() {
			params := accounts.TokenValueUpdateParams{Body: map[string]any{}}
			params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
			res, err = accounts.NewTokenValueService(opts...).Update(ctx, id, params)
		} else {
			res, err = user.NewTokenValueService(opts...).Update(ctx, id, user.TokenValueUpdateParams{Body: map[string]any{}})
		}
		if err != nil {
			return err
		}
		value = *res
		return nil
	})
	if err != nil {
		return token.Secret{}, fmt.Errorf("roll token %s: %w", id, err)
	}
	if value == "" {
		// A 2xx with result null decodes to "" without error; handing that
		// on as the token's value would give the caller an empty secret.
		return token.Secret{}, fmt.Errorf("roll token %s: the answer has no value", id)
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
	err = c.do(ctx, true, func(ctx context.Context) error {
		if ep.IsAccount() {
			var params accounts.TokenGetParams
			params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
			t, err = accounts.NewTokenService(opts...).Get(ctx, id, params)
		} else {
			t, err = user.NewTokenService(opts...).Get(ctx, id)
		}
		return err
	})
	if err != nil {
		return token.Info{}, fmt.Errorf("get token %s: %w", id, err)
	}
	if t.ID == "" {
		// A 2xx with result null decodes to a zero token without error.
		return token.Info{}, fmt.Errorf("get token %s: the answer has no token", id)
	}
	return info(*t), nil
}

func info(t shared.Token) token.Info {
	return token.Info{ID: t.ID, Name: t.Name, Status: string(t.Status), ExpiresOn: t.ExpiresOn}
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
	opts = append(opts, option.WithQuery("include_expired", "true"))
	var all []token.Info
	for page := 1; ; page++ {
		var items []shared.Token
		err := c.do(ctx, true, func(ctx context.Context) error {
			if ep.IsAccount() {
				var params accounts.TokenListParams
				params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
				params.Page.Value, params.Page.Present = float64(page), true
				params.PerPage.Value, params.PerPage.Present = listPageSize, true
				res, err := accounts.NewTokenService(opts...).List(ctx, params)
				if err != nil {
					return err
				}
				items = res.Result
				return nil
			}
			var params user.TokenListParams
			params.Page.Value, params.Page.Present = float64(page), true
			params.PerPage.Value, params.PerPage.Present = listPageSize, true
			res, err := user.NewTokenService(opts...).List(ctx, params)
			if err != nil {
				return err
			}
			items = res.Result
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list tokens (page %d): %w", page, err)
		}
		for _, t := range items {
			all = append(all, info(t))
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
	err = c.do(ctx, true, func(ctx context.Context) error {
		if ep.IsAccount() {
			var params accounts.TokenDeleteParams
			params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
			_, err := accounts.NewTokenService(opts...).Delete(ctx, id, params)
			return err
		}
		_, err := user.NewTokenService(opts...).Delete(ctx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	return nil
}

// VerifyToken asks the API whether a token (the child, not the client's
// parent) is valid and active, and returns its status.
//
//	GET /user/tokens/verify
//	GET /accounts/{account_id}/tokens/verify
func (c *Client) VerifyToken(ctx context.Context, ep token.Endpoint, secret token.Secret) (string, error) {
	opts, err := c.options(secret)
	if err != nil {
		return "", err
	}
	var status string
	err = c.do(ctx, true, func(ctx context.Context) error {
		if ep.IsAccount() {
			var params accounts.TokenVerifyParams
			params.AccountID.Value, params.AccountID.Present = ep.AccountID, true
			res, err := accounts.NewTokenService(opts...).Verify(ctx, params)
			if err != nil {
				return err
			}
			status = string(res.Status)
			return nil
		}
		res, err := user.NewTokenService(opts...).Verify(ctx)
		if err != nil {
			return err
		}
		status = string(res.Status)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("verify token: %w", err)
	}
	if status == "" {
		// A 2xx with result null decodes to an empty status without error.
		return "", errors.New("verify token: the answer has no status")
	}
	return status, nil
}

// RunnerIP asks the API host's /cdn-cgi/trace which address this machine
// reaches it from: the address a token's IP condition sees.
//
//	GET /cdn-cgi/trace (on the API host, outside the base path)
func (c *Client) RunnerIP(ctx context.Context) (string, error) {
	if c.BaseURL == "" || c.HTTP == nil {
		return "", fmt.Errorf("cloudflare client: BaseURL and HTTP must be set")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return "", fmt.Errorf("cloudflare client: base URL: %w", err)
	}
	u.Path, u.RawPath = "/cdn-cgi/trace", ""
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
	var ip string
	err = c.do(ctx, true, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBodySize))
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return &APIError{Method: http.MethodGet, Path: "/cdn-cgi/trace", Status: res.StatusCode}
		}
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "ip="); ok {
				ip = strings.TrimSpace(v)
				return nil
			}
		}
		return fmt.Errorf("GET /cdn-cgi/trace: no ip= line in the answer")
	})
	if err != nil {
		return "", fmt.Errorf("look up the runner's address: %w", err)
	}
	return ip, nil
}
