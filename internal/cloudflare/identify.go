package cloudflare

import (
	"context"
	"fmt"

	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/user"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// IdentifyToken asks the API which token a secret is: the id, status and
// expiry the verify endpoint reports when the secret itself is the
// credential. The keyless broker revokes a child that a job presents by
// finding its id this way (the parent then reads and deletes it by id). A
// secret the endpoint does not know — unknown, deleted, or owned by
// someone else than the endpoint's owner — is a 401 that matches
// token.ErrUnauthorized; an answer without a valid id wraps
// token.ErrBadAnswer.
//
//	GET /user/tokens/verify
//	GET /accounts/{account_id}/tokens/verify
func (c *Client) IdentifyToken(ctx context.Context, ep token.Endpoint, secret token.Secret) (token.Info, error) {
	opts, err := c.options(secret)
	if err != nil {
		return token.Info{}, err
	}
	var info token.Info
	err = c.do(ctx, idempotent, func(ctx context.Context) error {
		if ep.IsAccount() {
			var p accounts.TokenVerifyParams
			p.AccountID.Value, p.AccountID.Present = ep.AccountID, true
			res, err := accounts.NewTokenService(opts...).Verify(ctx, p)
			if err != nil {
				return err
			}
			info = token.Info{ID: res.ID, Status: string(res.Status), ExpiresOn: res.ExpiresOn}
			return nil
		}
		res, err := user.NewTokenService(opts...).Verify(ctx)
		if err != nil {
			return err
		}
		info = token.Info{ID: res.ID, Status: string(res.Status), ExpiresOn: res.ExpiresOn}
		return nil
	})
	if err != nil {
		return token.Info{}, fmt.Errorf("identify token: %w", err)
	}
	if !validID(info.ID) {
		return token.Info{}, fmt.Errorf("identify token: %w", badAnswer("the id is missing or not 32 lowercase hex"))
	}
	if !info.ExpiresOn.IsZero() {
		info.ExpiresOn = info.ExpiresOn.UTC()
	}
	return info, nil
}
