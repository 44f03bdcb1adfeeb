package broker

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// revokeDeadline bounds one revoke, its retries included.
const revokeDeadline = time.Minute

// maxChildSize bounds a token presented for revocation; Cloudflare's are
// 40 to about 60 characters.
const maxChildSize = 512

// serveRevoke is RFC 7009 revocation: the caller presents the child token
// itself (form token=…), the broker finds its id by verifying it on the
// endpoints the parent can read (revokeEndpoints), reads it with the
// parent, and deletes it only if its name carries this broker's MAC. An
// unknown or foreign token, or one the parent may not read, is answered 200
// and left alone (RFC 7009 §2.2); when Cloudflare fails, or refuses the
// parent itself, the answer is 503 with Retry-After (§2.2.1).
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), revokeDeadline)
	defer cancel()
	caller := s.caller(r)
	e := Entry{Event: EventRevoke, Caller: addrString(caller)}
	aerr := s.revoke(ctx, w, r, caller, &e)
	if aerr != nil {
		e.Outcome, e.Status, e.Code, e.Reason = "failed", aerr.status, string(aerr.code), aerr.desc
		s.audit.write(e)
		writeError(w, aerr)
		return
	}
	e.Status = http.StatusOK
	s.audit.write(e)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) revoke(ctx context.Context, w http.ResponseWriter, r *http.Request, caller netip.Addr, e *Entry) *apiError {
	form, aerr := readForm(w, r)
	if aerr != nil {
		return aerr
	}
	child := form.Get("token")
	if child == "" {
		return badRequest(InvalidRequest, "token is missing: send the child token to revoke")
	}
	// Revoke needs no identity, so it is limited per caller address: each
	// request may cost several Cloudflare calls.
	if ok, wait := s.limits.allow("revoke "+addrString(caller), s.now()); !ok {
		return &apiError{status: http.StatusTooManyRequests, code: SlowDown, retryAfter: retryAfterSeconds(wait),
			desc: "too many revocations from this address; retry in " + retryAfterSeconds(wait).String()}
	}
	secret, err := token.ParseAPIToken(child)
	if err != nil || len(child) > maxChildSize {
		e.Outcome, e.Reason = "unknown", "not a token Cloudflare could have made"
		return nil // RFC 7009 §2.2: an invalid token is answered 200
	}
	for _, ep := range s.revokeEndpoints() {
		info, err := s.api.VerifyToken(ctx, ep, secret)
		switch {
		case errors.Is(err, token.ErrUnauthorized):
			continue // not known here
		case err != nil:
			s.logf("revoke from %s: identify the token on %s: %v", e.Caller, endpointName(ep), err)
			return unavailable()
		}
		e.TokenID, e.Owner = info.ID, ownerOf(ep)
		full, err := s.api.GetToken(ctx, ep, info.ID)
		switch {
		case errors.Is(err, token.ErrNotFound):
			e.Outcome = "not_found"
			return nil
		case errors.Is(err, token.ErrUnauthorized):
			// Cloudflare refused the parent itself (deleted, rolled, expired,
			// or used from an address it may not be used from): whether the
			// child is this broker's is unknown, and a job told 200 would
			// believe its token gone. Readiness is left to CheckParent: anyone
			// may call revoke, with a token of any owner, and Cloudflare has
			// been seen to answer 9109 for a token the caller may not touch.
			s.logf("revoke from %s: Cloudflare refused the parent token reading token %s on %s: %v", e.Caller, info.ID, endpointName(ep), err)
			aerr := unavailable()
			aerr.desc = "Cloudflare refused the broker's parent token; the token may still be live; retry later"
			return aerr
		case errors.Is(err, token.ErrForbidden):
			// The parent may not read it, so the broker cannot tell whether
			// it made it: it is not deleted. A parent that lost a permission
			// is the operator's to know.
			s.logf("revoke from %s: the parent token may not read token %s on %s: %v", e.Caller, info.ID, endpointName(ep), err)
			e.Outcome, e.Reason = "foreign", "the parent token may not read it, so it is not known to be this broker's; it is left alone"
			return nil
		case err != nil:
			s.logf("revoke from %s: read token %s: %v", e.Caller, info.ID, err)
			return unavailable()
		}
		e.Name, e.ExpiresAt, e.Accounts = clean(full.Name), formatTime(full.ExpiresOn), full.AccountIDs
		if !s.namer.owns(full.Name) {
			e.Outcome, e.Reason = "foreign", "the token's name carries no MAC of this broker's; it is left alone"
			return nil
		}
		out, err := s.minter().Revoke(ctx, ep, full)
		if err != nil {
			s.logf("revoke from %s: %v", e.Caller, err)
			return unavailable()
		}
		e.Outcome = "deleted"
		if out == mint.NotFound {
			e.Outcome = "not_found"
		}
		return nil
	}
	e.Outcome, e.Reason = "unknown", "no endpoint the parent token can read knows the token"
	return nil
}

// revokeEndpoints are where revoke looks a token up: the endpoints the
// policy grants on and the user's (a user-owned child may outlive a policy
// change), of those the parent can read. An account-owned parent reads its
// own account's tokens only (checkParentReach holds the policy to that
// account): on the user endpoint a valid user-owned token would verify, and
// reading it with the parent would be refused.
func (s *Server) revokeEndpoints() []token.Endpoint {
	s.readyMu.Lock()
	pep := s.parentEP
	s.readyMu.Unlock()
	if pep != nil && pep.IsAccount() {
		return []token.Endpoint{*pep}
	}
	eps := s.state.Load().endpoints
	if !slices.Contains(eps, token.Endpoint{}) {
		eps = append([]token.Endpoint{{}}, eps...)
	}
	return eps
}

func unavailable() *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: TemporarilyUnavailable, retryAfter: 10 * time.Second,
		desc: "Cloudflare did not answer or kept failing; the token may still be live; retry later"}
}
