package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// The official SDK, unmodified, must work against the emulator. Services are built only
// from explicit options: cloudflare.NewClient would read CLOUDFLARE_* from the environment.

// sdkOptions points the SDK at the emulator with the given token and no retries.
func sdkOptions(te *testEnv, tok string) []option.RequestOption {
	return []option.RequestOption{
		option.WithBaseURL(te.api + "/"),
		option.WithAPIToken(tok),
		option.WithHTTPClient(te.srv.Client()),
		option.WithMaxRetries(0),
	}
}

// sdkPolicy is one allow policy of groups on an account, as SDK params.
func sdkPolicy(accountID string, groups ...string) []shared.TokenPolicyParam {
	pgs := []shared.TokenPolicyPermissionGroupParam{}
	for _, g := range groups {
		pgs = append(pgs, shared.TokenPolicyPermissionGroupParam{ID: cloudflare.F(g)})
	}
	return []shared.TokenPolicyParam{{
		Effect:           cloudflare.F(shared.TokenPolicyEffectAllow),
		PermissionGroups: cloudflare.F(pgs),
		Resources:        cloudflare.F[shared.TokenPolicyResourcesUnionParam](shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam{acct(accountID): "*"}),
	}}
}

func TestSDKUserTokens(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	ctx := context.Background()
	a0 := te.seed.AccountIDs[0]
	tokens := user.NewTokenService(sdkOptions(te, te.seed.UserToken)...)

	// Permission groups, filtered by name and scope, resolve to the account-scoped id.
	groups := user.NewTokenPermissionGroupService(sdkOptions(te, te.seed.UserToken)...)
	page, err := groups.List(ctx, user.TokenPermissionGroupListParams{
		Name:  cloudflare.F("Access: Apps and Policies Write"),
		Scope: cloudflare.F("com.cloudflare.api.account"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Result) != 1 || page.Result[0].ID != gAppsWrite {
		t.Fatalf("permission groups = %+v, want only %s", page.Result, gAppsWrite)
	}

	// Create, with an expiry and an IP condition.
	expires := t0.Add(time.Hour)
	created, err := tokens.New(ctx, user.TokenNewParams{
		Name:      cloudflare.F("sdk child"),
		Policies:  cloudflare.F(sdkPolicy(a0, gAppsWrite)),
		ExpiresOn: cloudflare.F(expires),
		Condition: cloudflare.F(user.TokenNewParamsCondition{RequestIP: cloudflare.F(user.TokenNewParamsConditionRequestIP{
			In: cloudflare.F([]string{"127.0.0.0/8"}),
		})}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.Value == "" || created.Status != user.TokenNewResponseStatusActive || !created.ExpiresOn.Equal(expires) ||
		!created.IssuedOn.Equal(t0) || len(created.Condition.RequestIP.In) != 1 {
		t.Errorf("created = %+v", created)
	}
	if len(created.Policies) != 1 || created.Policies[0].PermissionGroups[0].ID != gAppsWrite || created.Policies[0].ID == "" {
		t.Errorf("created policies = %+v", created.Policies)
	}

	// Get.
	got, err := tokens.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "sdk child" || got.Status != shared.TokenStatusActive || !got.ExpiresOn.Equal(expires) {
		t.Errorf("got = %+v", got)
	}

	// Verify, as the child itself.
	v, err := user.NewTokenService(sdkOptions(te, created.Value)...).Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != created.ID || v.Status != user.TokenVerifyResponseStatusActive || !v.ExpiresOn.Equal(expires) {
		t.Errorf("verify = %+v", v)
	}

	// ListAutoPaging over more than one page (per_page 5, 12 tokens).
	for i := range 10 {
		if _, err := tokens.New(ctx, user.TokenNewParams{
			Name: cloudflare.F(fmt.Sprintf("sdk %d", i)), Policies: cloudflare.F(sdkPolicy(a0, gOrgsRead)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	iter := tokens.ListAutoPaging(ctx, user.TokenListParams{PerPage: cloudflare.F(5.0)})
	seen := map[string]bool{}
	for iter.Next() {
		seen[iter.Current().ID] = true
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 12 || !seen[created.ID] || !seen[te.seed.UserTokenID] {
		t.Errorf("auto-paged %d tokens, want 12", len(seen))
	}
	if pages := len(te.e.RequestsTo("GET /user/tokens")); pages != 4 { // 5 + 5 + 2, then the empty page that ends the pager
		t.Errorf("auto-pager made %d list requests, want 4", pages)
	}

	// Roll the child's value.
	rolled, err := user.NewTokenValueService(sdkOptions(te, te.seed.UserToken)...).Update(ctx, created.ID,
		user.TokenValueUpdateParams{Body: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if *rolled == created.Value || findToken(t, te.e, created.ID).Value != *rolled {
		t.Errorf("rolled value %q not stored", *rolled)
	}

	// Delete; then the SDK sees a 404 for it.
	del, err := tokens.Delete(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if del.ID != created.ID {
		t.Errorf("delete = %+v", del)
	}
	_, err = tokens.Get(ctx, created.ID)
	var apiErr *cloudflare.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || len(apiErr.Errors) == 0 || apiErr.Errors[0].Code != 1003 {
		t.Errorf("get deleted: %v", err)
	}

	// An error the SDK must classify: creating beyond the parent's accounts.
	_, err = tokens.New(ctx, user.TokenNewParams{
		Name: cloudflare.F("too broad"), Policies: cloudflare.F(sdkPolicy("ffffffffffffffffffffffffffffffff", gOrgsRead)),
	})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Errors[0].Code != 1001 {
		t.Errorf("create beyond the parent: %v", err)
	}
}

func TestSDKAccountTokens(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	ctx := context.Background()
	a0 := te.seed.AccountIDs[0]
	tokens := accounts.NewTokenService(sdkOptions(te, te.seed.AccountToken)...)

	page, err := accounts.NewTokenPermissionGroupService(sdkOptions(te, te.seed.AccountToken)...).List(ctx,
		accounts.TokenPermissionGroupListParams{AccountID: cloudflare.F(a0), Name: cloudflare.F("Access: Service Tokens Read")})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Result) != 1 || page.Result[0].ID != gServiceTokensRead {
		t.Fatalf("permission groups = %+v", page.Result)
	}

	created, err := tokens.New(ctx, accounts.TokenNewParams{
		AccountID: cloudflare.F(a0),
		Name:      cloudflare.F("sdk account child"),
		Policies:  cloudflare.F(sdkPolicy(a0, gServiceTokensRead)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Value) != 53 || created.Value[:5] != "cfat_" {
		t.Errorf("value = %q", created.Value)
	}
	got, err := tokens.Get(ctx, created.ID, accounts.TokenGetParams{AccountID: cloudflare.F(a0)})
	if err != nil || got.ID != created.ID {
		t.Fatalf("get: %+v, %v", got, err)
	}
	v, err := accounts.NewTokenService(sdkOptions(te, created.Value)...).Verify(ctx, accounts.TokenVerifyParams{AccountID: cloudflare.F(a0)})
	if err != nil || v.ID != created.ID || v.Status != accounts.TokenVerifyResponseStatusActive {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	for i := range 6 {
		if _, err := tokens.New(ctx, accounts.TokenNewParams{
			AccountID: cloudflare.F(a0), Name: cloudflare.F(fmt.Sprintf("a%d", i)), Policies: cloudflare.F(sdkPolicy(a0, gOrgsRead)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	iter := tokens.ListAutoPaging(ctx, accounts.TokenListParams{AccountID: cloudflare.F(a0), PerPage: cloudflare.F(5.0)})
	n := 0
	for iter.Next() {
		n++
	}
	if err := iter.Err(); err != nil || n != 8 {
		t.Errorf("auto-paged %d account tokens (err %v), want 8", n, err)
	}
	if _, err := tokens.Delete(ctx, created.ID, accounts.TokenDeleteParams{AccountID: cloudflare.F(a0)}); err != nil {
		t.Fatal(err)
	}

	// The account-owned token cannot use /user/tokens/verify: 401 code 1000.
	_, err = user.NewTokenService(sdkOptions(te, te.seed.AccountToken)...).Verify(ctx)
	var apiErr *cloudflare.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Errors[0].Code != 1000 {
		t.Errorf("account token on /user/tokens/verify: %v", err)
	}
}

// TestSDKRetriesInjectedFaults shows why create must not be retried: the SDK's own retry
// of a 5xx goes through, and a lost response followed by a retry mints two tokens.
func TestSDKRetriesInjectedFaults(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	ctx := context.Background()
	opts := append(sdkOptions(te, te.seed.UserToken), option.WithMaxRetries(2))
	tokens := user.NewTokenService(opts...)

	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens/{token_id}", Kind: emulator.Status, Status: 503, Times: 1})
	if _, err := tokens.Get(ctx, te.seed.UserTokenID); err != nil {
		t.Errorf("SDK did not ride out one 503: %v", err)
	}

	te.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1})
	if _, err := tokens.New(ctx, user.TokenNewParams{
		Name: cloudflare.F("dup"), Policies: cloudflare.F(sdkPolicy(te.seed.AccountIDs[0], gOrgsRead)),
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(named(te.e, "dup")); n != 2 {
		t.Errorf("%d tokens named dup, want 2 (one lost, one retried)", n)
	}
}
