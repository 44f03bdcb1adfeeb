package cloudflare

import (
	"encoding/json"
	"sync"

	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"
)

// warmEncoders makes the SDK's JSON encoders safe to use from several
// goroutines. SDK v6.10.0 races on the first concurrent marshal of a type
// behind an interface (internal/apijson newInterfaceEncoder writes e.root
// in a closure all callers share); once the type is in the SDK's cache
// nothing writes. So the first create or roll marshals each body shape
// once, alone: the create bodies (a map behind the policies' resources
// union) and the roll bodies (an empty map[string]any).
//
// It is the one package-level variable here: it guards the SDK's own
// global cache, which no test patches.
var warmEncoders = sync.OnceFunc(func() {
	var pol shared.TokenPolicyParam
	pol.Resources.Value, pol.Resources.Present = shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam{"k": "*"}, true
	var u user.TokenNewParams
	u.Policies.Value, u.Policies.Present = []shared.TokenPolicyParam{pol}, true
	var a accounts.TokenNewParams
	a.Policies.Value, a.Policies.Present = []shared.TokenPolicyParam{pol}, true
	_, _ = json.Marshal(u)
	_, _ = json.Marshal(a)
	_, _ = json.Marshal(user.TokenValueUpdateParams{Body: map[string]any{}})
	_, _ = json.Marshal(accounts.TokenValueUpdateParams{Body: map[string]any{}})
})
