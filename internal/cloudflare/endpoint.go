package cloudflare

import (
	"context"
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

// errNoResult is a 2xx whose body is the JSON null: the SDK's list calls
// then give neither a page nor an error.
var errNoResult = badAnswer("the answer holds no result")

// endpoint is the one place that decides between the user's token
// endpoints and an account's: the SDK has a service and a parameter type
// of its own for each, and everything above this adapter is the same for
// both (reference/cloudflare-api.md, Endpoints).
type endpoint interface {
	permissionGroups(ctx context.Context) ([]token.PermissionGroup, error)
	create(ctx context.Context, b createBody) (created, error)
	roll(ctx context.Context, id string) (string, error)
	get(ctx context.Context, id string) (*shared.Token, error)
	list(ctx context.Context, page int) ([]shared.Token, error)
	delete(ctx context.Context, id string) error
	verify(ctx context.Context) (token.Info, error)
}

// createBody is a create request in the SDK's shared policy type.
type createBody struct {
	name       string
	policies   []shared.TokenPolicyParam
	expiresOn  time.Time
	allowedIPs []string
}

// created is the part of a create answer the client reads, whichever
// endpoint gave it.
type created struct {
	token shared.Token
	value string
}

func endpointFor(ep token.Endpoint, opts []option.RequestOption) endpoint {
	if ep.IsAccount() {
		return accountEndpoint{id: ep.AccountID, opts: opts}
	}
	return userEndpoint{opts: opts}
}

// userEndpoint is /user/tokens.
type userEndpoint struct{ opts []option.RequestOption }

func (u userEndpoint) permissionGroups(ctx context.Context) ([]token.PermissionGroup, error) {
	page, err := user.NewTokenPermissionGroupService(u.opts...).List(ctx, user.TokenPermissionGroupListParams{})
	if err != nil {
		return nil, err
	}
	if page == nil {
		return nil, errNoResult
	}
	groups := make([]token.PermissionGroup, len(page.Result))
	for i, g := range page.Result {
		groups[i] = token.PermissionGroup{ID: g.ID, Name: g.Name, Scopes: scopes(g.Scopes)}
	}
	return groups, nil
}

func (u userEndpoint) create(ctx context.Context, b createBody) (created, error) {
	var p user.TokenNewParams
	p.Name.Value, p.Name.Present = b.name, true
	p.Policies.Value, p.Policies.Present = b.policies, true
	p.ExpiresOn.Value, p.ExpiresOn.Present = b.expiresOn, true
	if len(b.allowedIPs) > 0 {
		var ip user.TokenNewParamsConditionRequestIP
		ip.In.Value, ip.In.Present = b.allowedIPs, true
		p.Condition.Value.RequestIP.Value, p.Condition.Value.RequestIP.Present = ip, true
		p.Condition.Present = true
	}
	res, err := user.NewTokenService(u.opts...).New(ctx, p)
	if err != nil {
		return created{}, err
	}
	return created{
		token: shared.Token{ID: res.ID, Name: res.Name, Status: shared.TokenStatus(res.Status), IssuedOn: res.IssuedOn, ExpiresOn: res.ExpiresOn, Policies: res.Policies},
		value: res.Value,
	}, nil
}

func (u userEndpoint) roll(ctx context.Context, id string) (string, error) {
	res, err := user.NewTokenValueService(u.opts...).Update(ctx, id, user.TokenValueUpdateParams{Body: map[string]any{}})
	if err != nil {
		return "", err
	}
	return *res, nil
}

func (u userEndpoint) get(ctx context.Context, id string) (*shared.Token, error) {
	return user.NewTokenService(u.opts...).Get(ctx, id)
}

func (u userEndpoint) list(ctx context.Context, page int) ([]shared.Token, error) {
	var p user.TokenListParams
	p.Page.Value, p.Page.Present = float64(page), true
	p.PerPage.Value, p.PerPage.Present = listPageSize, true
	res, err := user.NewTokenService(u.opts...).List(ctx, p)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, errNoResult
	}
	return res.Result, nil
}

func (u userEndpoint) delete(ctx context.Context, id string) error {
	_, err := user.NewTokenService(u.opts...).Delete(ctx, id)
	return err
}

func (u userEndpoint) verify(ctx context.Context) (token.Info, error) {
	res, err := user.NewTokenService(u.opts...).Verify(ctx)
	if err != nil {
		return token.Info{}, err
	}
	return token.Info{ID: res.ID, Status: string(res.Status), ExpiresOn: res.ExpiresOn}, nil
}

// accountEndpoint is /accounts/{account_id}/tokens.
type accountEndpoint struct {
	id   string
	opts []option.RequestOption
}

func (a accountEndpoint) permissionGroups(ctx context.Context) ([]token.PermissionGroup, error) {
	var p accounts.TokenPermissionGroupListParams
	p.AccountID.Value, p.AccountID.Present = a.id, true
	page, err := accounts.NewTokenPermissionGroupService(a.opts...).List(ctx, p)
	if err != nil {
		return nil, err
	}
	if page == nil {
		return nil, errNoResult
	}
	groups := make([]token.PermissionGroup, len(page.Result))
	for i, g := range page.Result {
		groups[i] = token.PermissionGroup{ID: g.ID, Name: g.Name, Scopes: scopes(g.Scopes)}
	}
	return groups, nil
}

func (a accountEndpoint) create(ctx context.Context, b createBody) (created, error) {
	var p accounts.TokenNewParams
	p.AccountID.Value, p.AccountID.Present = a.id, true
	p.Name.Value, p.Name.Present = b.name, true
	p.Policies.Value, p.Policies.Present = b.policies, true
	p.ExpiresOn.Value, p.ExpiresOn.Present = b.expiresOn, true
	if len(b.allowedIPs) > 0 {
		var ip accounts.TokenNewParamsConditionRequestIP
		ip.In.Value, ip.In.Present = b.allowedIPs, true
		p.Condition.Value.RequestIP.Value, p.Condition.Value.RequestIP.Present = ip, true
		p.Condition.Present = true
	}
	res, err := accounts.NewTokenService(a.opts...).New(ctx, p)
	if err != nil {
		return created{}, err
	}
	return created{
		token: shared.Token{ID: res.ID, Name: res.Name, Status: shared.TokenStatus(res.Status), IssuedOn: res.IssuedOn, ExpiresOn: res.ExpiresOn, Policies: res.Policies},
		value: res.Value,
	}, nil
}

func (a accountEndpoint) roll(ctx context.Context, id string) (string, error) {
	p := accounts.TokenValueUpdateParams{Body: map[string]any{}}
	p.AccountID.Value, p.AccountID.Present = a.id, true
	res, err := accounts.NewTokenValueService(a.opts...).Update(ctx, id, p)
	if err != nil {
		return "", err
	}
	return *res, nil
}

func (a accountEndpoint) get(ctx context.Context, id string) (*shared.Token, error) {
	var p accounts.TokenGetParams
	p.AccountID.Value, p.AccountID.Present = a.id, true
	return accounts.NewTokenService(a.opts...).Get(ctx, id, p)
}

func (a accountEndpoint) list(ctx context.Context, page int) ([]shared.Token, error) {
	var p accounts.TokenListParams
	p.AccountID.Value, p.AccountID.Present = a.id, true
	p.Page.Value, p.Page.Present = float64(page), true
	p.PerPage.Value, p.PerPage.Present = listPageSize, true
	res, err := accounts.NewTokenService(a.opts...).List(ctx, p)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, errNoResult
	}
	return res.Result, nil
}

func (a accountEndpoint) delete(ctx context.Context, id string) error {
	var p accounts.TokenDeleteParams
	p.AccountID.Value, p.AccountID.Present = a.id, true
	_, err := accounts.NewTokenService(a.opts...).Delete(ctx, id, p)
	return err
}

func (a accountEndpoint) verify(ctx context.Context) (token.Info, error) {
	var p accounts.TokenVerifyParams
	p.AccountID.Value, p.AccountID.Present = a.id, true
	res, err := accounts.NewTokenService(a.opts...).Verify(ctx, p)
	if err != nil {
		return token.Info{}, err
	}
	return token.Info{ID: res.ID, Status: string(res.Status), ExpiresOn: res.ExpiresOn}, nil
}

func scopes[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}
