package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// tokenResponse is a successful exchange's body (SPEC, "The broker"; RFC
// 8693 §2.2.1): the RFC's fields, then what the action hands over.
type tokenResponse struct {
	AccessToken      string            `json:"access_token"`
	IssuedTokenType  string            `json:"issued_token_type"`
	TokenType        string            `json:"token_type"`
	ExpiresIn        int64             `json:"expires_in"`
	Scope            string            `json:"scope"`
	TokenID          string            `json:"token_id"`
	ExpiresAt        string            `json:"expires_at"`
	Name             string            `json:"name"`
	Owner            string            `json:"owner"`
	AccountIDs       []string          `json:"account_ids"`
	PermissionGroups []permissionGroup `json:"permission_groups"`
	AllowedIPs       []string          `json:"allowed_ips"`
	Rule             string            `json:"rule"`
}

type permissionGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// exchange is one request to the token endpoint, as it goes.
type exchange struct {
	st     *state
	caller netip.Addr
	entry  Entry
	id     *oidcverify.Identity // set once the subject token is verified
	handed bool                 // the handover was attempted: the token may have reached the caller
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.deadline)
	defer cancel()
	x := &exchange{st: s.state.Load(), caller: s.caller(r)}
	x.entry = Entry{Event: EventDeny, Caller: addrString(x.caller)}
	aerr := s.exchange(ctx, w, r, x)
	if aerr == nil {
		return
	}
	// An exchange that failed on the broker's side (Cloudflare, the mint) or
	// was told to come back later (429) gives the token back before anything
	// was handed out, so the job can retry with the OIDC token it has; a
	// refusal of the request keeps it used up.
	if x.id != nil && !x.handed && (aerr.status >= 500 || aerr.status == http.StatusTooManyRequests) {
		x.st.verifier.Release(x.id)
	}
	x.entry.Status, x.entry.Code, x.entry.Reason = aerr.status, string(aerr.code), aerr.desc
	s.audit.write(x.entry)
	if !x.handed {
		writeError(w, aerr)
	}
}

// exchange runs the exchange; on success it has answered and logged.
func (s *Server) exchange(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange) *apiError {
	form, aerr := readForm(w, r)
	if aerr != nil {
		return aerr
	}
	req, subject, aerr := parseExchange(form)
	if aerr != nil {
		return aerr
	}
	req.Caller = x.caller
	x.entry.Scopes, x.entry.Accounts = scopeNames(req.Scopes), req.AccountIDs

	id, err := x.st.verifier.Verify(ctx, subject)
	switch {
	case errors.Is(err, oidcverify.ErrUnavailable):
		s.logf("exchange from %s: %v", addrString(x.caller), err)
		return &apiError{status: http.StatusServiceUnavailable, code: TemporarilyUnavailable, retryAfter: 5 * time.Second,
			desc: "the OIDC issuer's keys could not be fetched; try again shortly"}
	case errors.Is(err, oidcverify.ErrInvalid):
		return badRequest(InvalidRequest, "subject_token: %s", err.Error())
	case err != nil:
		// The request ended (the caller went away, the deadline passed).
		return &apiError{status: http.StatusServiceUnavailable, code: TemporarilyUnavailable, retryAfter: 5 * time.Second,
			desc: "the subject token could not be verified in time"}
	}
	x.id = id
	is, ok := x.st.policy.IssuerByURL(id.Issuer)
	if !ok { // the verifier trusts exactly the policy's issuers
		return badRequest(InvalidRequest, "subject_token: issuer is not trusted")
	}
	run := runOf(is.Kind, id.Claims)
	x.entry.Issuer, x.entry.Subject, x.entry.JTI = clean(id.Issuer), clean(id.Subject), clean(id.JTI)
	x.entry.Repository, x.entry.RepositoryID, x.entry.RunID = run.repository, run.repositoryID, run.run

	if ok, wait := s.limits.allow(policy.IdentityKey(is, id.Claims), s.now()); !ok {
		return &apiError{status: http.StatusTooManyRequests, code: SlowDown, retryAfter: retryAfterSeconds(wait),
			desc: fmt.Sprintf("this identity's rate limit is reached; retry in %s", retryAfterSeconds(wait))}
	}

	req.Issuer = id.Issuer
	grant, err := x.st.policy.Match(id.Claims, req)
	if err != nil {
		var d *policy.Denial
		if !errors.As(err, &d) {
			return &apiError{status: http.StatusInternalServerError, code: ServerError, desc: "internal error"}
		}
		x.entry.Rule = d.Rule
		status := http.StatusBadRequest
		if d.Code == policy.AccessDenied {
			status = http.StatusForbidden
		}
		return &apiError{status: status, code: Code(d.Code), desc: d.Error()}
	}
	x.entry.Rule, x.entry.Owner = grant.Rule, string(grant.Owner)
	x.entry.Scopes, x.entry.Accounts = scopeNames(grant.Scopes), grant.AccountIDs

	subjectName := run.repository
	if subjectName == "" {
		subjectName = clean(id.Subject)
	}
	name, err := s.namer.name(token.RunContext{Repository: subjectName, RunID: run.run, RunAttempt: run.attempt}, s.rand)
	if err != nil {
		return &apiError{status: http.StatusInternalServerError, code: ServerError, desc: "internal error"}
	}
	x.entry.Name = name
	treq := token.Request{
		Mode: token.ModeCreate, Owner: grant.Owner, AccountIDs: grant.AccountIDs, Scopes: grant.Scopes,
		TTL: grant.TTL, Name: name, AllowedIPs: grant.AllowedIPs, Verify: true,
	}
	m := s.minter()
	var ledger mint.Ledger
	m.Record = func(l mint.Ledger) error { ledger = l; return nil }
	minted, err := m.Mint(ctx, treq, func(m mint.Minted) error {
		x.handed = true
		return s.handOver(w, grant, m)
	})
	if err != nil {
		if ledger.ID != "" || ledger.Lost || ledger.Pending {
			// A token may exist that the lifecycle could not delete (its
			// create answer was lost and the look-up failed too): the broker
			// has no post step, so it keeps trying in the background.
			s.cleanUpLater(ctx, ledger)
		}
		return s.mintFailure(x, err)
	}
	x.entry.Event, x.entry.Status = EventMint, http.StatusOK
	x.entry.TokenID, x.entry.Name, x.entry.ExpiresAt = minted.ID, clean(minted.Name), formatTime(minted.ExpiresOn)
	s.audit.write(x.entry)
	return nil
}

// handOver answers the exchange with the token, and logs the mint. An
// error (the caller went away) makes the lifecycle delete the token.
func (s *Server) handOver(w http.ResponseWriter, g policy.Grant, m mint.Minted) error {
	groups := make([]permissionGroup, len(m.Groups))
	for i, pg := range m.Groups {
		groups[i] = permissionGroup{ID: pg.ID, Name: pg.Name}
	}
	body := tokenResponse{
		AccessToken:      m.Value.Reveal(),
		IssuedTokenType:  TokenTypeAccessToken,
		TokenType:        "Bearer",
		ExpiresIn:        max(0, int64(m.ExpiresOn.Sub(s.now()).Seconds())),
		Scope:            formatScopeParam(g.Scopes),
		TokenID:          m.ID,
		ExpiresAt:        formatTime(m.ExpiresOn),
		Name:             m.Name,
		Owner:            string(g.Owner),
		AccountIDs:       nonNil(m.AccountIDs),
		PermissionGroups: groups,
		AllowedIPs:       nonNil(m.AllowedIPs),
		Rule:             g.Rule,
	}
	b, err := json.Marshal(body) //nolint:gosec // the answer is the one place the child is handed out
	if err != nil {
		return fmt.Errorf("encode the answer: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write the answer: %w", err)
	}
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("send the answer: %w", err)
	}
	return nil
}

// mintFailure turns a lifecycle error into the answer. The lifecycle has
// deleted whatever it made by now. When the handover was attempted the
// caller's connection is what failed: there is no one to answer.
func (s *Server) mintFailure(x *exchange, err error) *apiError {
	who := x.entry.Repository
	if who == "" {
		who = x.entry.Subject
	}
	s.logf("exchange for %q (rule %q): %v", who, x.entry.Rule, err) // claims are the job's text: quoted, a newline cannot forge a line
	var ie *token.InputError
	switch {
	case x.handed:
		return &apiError{status: 499, code: TemporarilyUnavailable, desc: "the caller went away before the token was delivered; it was deleted"}
	case errors.As(err, &ie):
		// A granted scope that does not resolve now: the catalogue changed
		// since the policy was checked.
		return badRequest(InvalidScope, "scope: %s", ie.Problem)
	case errors.Is(err, token.ErrUnavailable), errors.Is(err, token.ErrOutcomeUnknown), errors.Is(err, token.ErrRateLimited),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, code: TemporarilyUnavailable, retryAfter: 10 * time.Second,
			desc: "Cloudflare did not answer or kept failing; no token was handed out; retry later"}
	}
	var verr *mint.VerifyError
	what := "Cloudflare refused the broker's request"
	if errors.As(err, &verr) {
		what = "Cloudflare did not accept the new token when it was checked"
	}
	return &apiError{status: http.StatusBadGateway, code: TemporarilyUnavailable, retryAfter: 30 * time.Second,
		desc: what + "; no token was handed out; the broker's log has the details"}
}

// parseExchange reads and checks the exchange's parameters (SPEC, POST
// /v1/token) with package token's parsers, before the subject token is
// looked at: a malformed request never uses up a jti.
func parseExchange(form url.Values) (policy.Request, string, *apiError) {
	var req policy.Request
	switch gt := form.Get("grant_type"); {
	case gt == "":
		return req, "", badRequest(InvalidRequest, "grant_type is missing; it must be %s", GrantTypeTokenExchange)
	case gt != GrantTypeTokenExchange:
		return req, "", badRequest(UnsupportedGrantType, "grant_type %s is not supported; it must be %s", showValue(gt), GrantTypeTokenExchange)
	}
	subject := form.Get("subject_token")
	switch {
	case subject == "":
		return req, "", badRequest(InvalidRequest, "subject_token is missing: send the CI job's OIDC token")
	case len(subject) > MaxSubjectTokenSize:
		return req, "", badRequest(InvalidRequest, "subject_token is %d bytes, more than the %d KiB accepted", len(subject), MaxSubjectTokenSize>>10)
	}
	switch tt := form.Get("subject_token_type"); tt {
	case TokenTypeIDToken, TokenTypeJWT:
	case "":
		return req, "", badRequest(InvalidRequest, "subject_token_type is missing; it must be %s or %s", TokenTypeIDToken, TokenTypeJWT)
	default:
		return req, "", badRequest(InvalidRequest, "subject_token_type %s is not accepted; it must be %s or %s", showValue(tt), TokenTypeIDToken, TokenTypeJWT)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return req, "", badRequest(InvalidRequest, "requested_token_type %s is not issued; this broker issues %s", showValue(rt), TokenTypeAccessToken)
	}
	if form.Has("actor_token") || form.Has("actor_token_type") {
		return req, "", badRequest(InvalidRequest, "actor_token is not supported: this broker does no delegation")
	}
	if form.Has("resource") || form.Has("audience") {
		return req, "", badRequest(InvalidTarget, "resource and audience are not supported: name the Cloudflare accounts with account_ids")
	}
	var aerr *apiError
	if req.Scopes, aerr = parseScopeParam(form.Get("scope")); aerr != nil {
		return req, "", aerr
	}
	if v := form.Get("account_ids"); strings.TrimSpace(v) != "" {
		ids, err := token.ParseAccountIDs(v)
		if err != nil {
			return req, "", inputFault("account_ids", err)
		}
		req.AccountIDs = ids
	}
	if v := form.Get("ttl"); strings.TrimSpace(v) != "" {
		ttl, err := token.ParseTTL(v)
		if err != nil {
			return req, "", inputFault("ttl", err)
		}
		req.TTL = ttl
	}
	if v := form.Get("allowed_ips"); strings.TrimSpace(v) != "" {
		var cidrs []string
		for _, item := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
			switch {
			case strings.EqualFold(item, policy.CallerKeyword):
				req.CallerIP = true
			case strings.EqualFold(item, token.RunnerKeyword):
				return req, "", badRequest(InvalidRequest, "allowed_ips: %q is the action's word; the broker's is %q, the address the request comes from", token.RunnerKeyword, policy.CallerKeyword)
			default:
				cidrs = append(cidrs, item)
			}
		}
		parsed, _, err := token.ParseAllowedIPs(strings.Join(cidrs, ","))
		if err != nil {
			return req, "", inputFault("allowed_ips", err)
		}
		req.AllowedIPs = parsed
	}
	return req, subject, nil
}

// inputFault is a parameter package token refused, as invalid_request.
func inputFault(param string, err error) *apiError {
	var ie *token.InputError
	if errors.As(err, &ie) {
		if ie.Accepted != "" {
			return badRequest(InvalidRequest, "%s: %s (accepted: %s)", param, ie.Problem, ie.Accepted)
		}
		return badRequest(InvalidRequest, "%s: %s", param, ie.Problem)
	}
	return badRequest(InvalidRequest, "%s is malformed", param)
}

// maxScopeItems bounds the scope parameter as the scopes input is bounded.
const maxScopeItems = 100

// parseScopeParam reads the scope parameter: space-separated items as in
// the scopes input, spaces inside a base name percent-encoded
// ("Access:%20Apps%20and%20Policies:write"). An item without a level is
// read. A token-managing group is invalid_scope (SPEC, the error table).
func parseScopeParam(v string) ([]token.Scope, *apiError) {
	items := strings.Fields(v)
	if len(items) > maxScopeItems {
		return nil, badRequest(InvalidRequest, "scope lists %d items, more than %d", len(items), maxScopeItems)
	}
	var out []token.Scope
	for i, item := range items {
		text, err := url.PathUnescape(item)
		if err != nil {
			return nil, badRequest(InvalidRequest, "scope item %d is not percent-encoded correctly", i+1)
		}
		if token.ManagesTokens(text) {
			return nil, badRequest(InvalidScope, "scope item %d would let the child make tokens of its own that outlive the job; no group that reads or manages API tokens is granted", i+1)
		}
		scopes, err := token.ParseScopes(text, token.Read)
		if err != nil {
			return nil, inputFault("scope", err)
		}
		for _, sc := range scopes {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return out, nil
}

// formatScopeParam writes scopes as the scope parameter and the answer's
// scope field: each item as the scopes input spells it, percent-encoded,
// separated by spaces. parseScopeParam reads it back.
func formatScopeParam(scopes []token.Scope) string {
	items := make([]string, len(scopes))
	for i, sc := range scopes {
		items[i] = url.PathEscape(sc.String())
	}
	return strings.Join(items, " ")
}

// showValue quotes a request value for a description: escaped, shortened,
// and not at all when it is shaped like a token or a JWT.
func showValue(v string) string {
	if token.LooksLikeSecret(v) {
		return "(a value that looks like a token, not shown)"
	}
	return fmt.Sprintf("%q", escape(v, 80))
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
