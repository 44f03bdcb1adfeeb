package emulator_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"
)

// TestMain warms the SDK's JSON encoder cache before the parallel SDK
// tests: SDK v6.10.0 races on the first concurrent marshal of a type
// behind an interface (internal/apijson newInterfaceEncoder writes e.root
// in a closure shared by all callers); once a type is cached there is no
// write. (internal/cloudflare does the same for its client; the emulator
// may not import it, and these tests call the SDK directly.)
func TestMain(m *testing.M) {
	var pol shared.TokenPolicyParam
	pol.Resources.Value, pol.Resources.Present = shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam{"k": "*"}, true
	var u user.TokenNewParams
	u.Policies.Value, u.Policies.Present = []shared.TokenPolicyParam{pol}, true
	var a accounts.TokenNewParams
	a.Policies.Value, a.Policies.Present = []shared.TokenPolicyParam{pol}, true
	_, _ = json.Marshal(u)
	_, _ = json.Marshal(a)
	os.Exit(m.Run())
}
