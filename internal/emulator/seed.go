package emulator

// Fixed ids of the accounts Seed creates (32 lowercase hex, like real account ids).
const (
	SeedAccount1 = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	SeedAccount2 = "1b2c3d4e5f60718293a4b5c6d7e8f90a"
	SeedAccount3 = "2c3d4e5f60718293a4b5c6d7e8f90a1b"
	// SeedUserEmail is the email of the user Seed creates.
	SeedUserEmail = "ci@example.com"
)

// Seeded is what Seed created: the user, its accounts and two parent tokens.
type Seeded struct {
	// UserID is the user's id; it is a member of all of AccountIDs.
	UserID string
	// AccountIDs are the three accounts, SeedAccount1…3, in that order.
	AccountIDs []string
	// UserToken and AccountToken are the parent tokens' secret values.
	UserToken, AccountToken string
	// UserTokenID and AccountTokenID are their ids.
	UserTokenID, AccountTokenID string
}

// accessWriteGroups returns the account-scoped Write groups of every Access area, which a
// parent token needs to exercise the Access endpoints itself.
func accessWriteGroups() []string {
	return []string{
		groupAccessOrgsWrite, groupAccessAppsWrite, groupAccessServiceTokensWrite,
		"2fc1072ee6b743828db668fcb3f9dee7", // Access: Device Posture Write
		"4e5fd8ac327b4a358e48c66fcbeb856d", // Access: Custom Pages Write
		"29d3afbfd4054af9accdd1118815ed05", // Access: Mutual TLS Certificates Write
		"d30c9ad8b5224e7cb8d41bcb4757effc", // Access: SSH Auditing Write
		"b05b28e839c54467a7d6cba5d3abb5a3", // Access: Audit Logs Read
	}
}

// Seed fills e with a ready-made world: three accounts (SeedAccount1…3), one user that is a
// member of all three, a user-owned parent token with "API Tokens Write" on the user and
// broad Access and account permissions on the three accounts (so it may create
// Access-scoped user tokens and call the Access endpoints), and an account-owned parent
// token on the first account with "Account API Tokens Write" and the same Access
// permissions there. The token values are random on every call.
func Seed(e *Emulator) Seeded {
	accounts := []string{SeedAccount1, SeedAccount2, SeedAccount3}
	for i, id := range accounts {
		e.AddAccount(id, []string{"Example Production", "Example Staging", "Example Sandbox"}[i])
	}
	userID := e.AddUser(SeedUserEmail, accounts...)

	acctGroups := append([]string{groupAccountAPITokensWrite, "4a9d3b5e0f2c4d8b9e3f7a1b2c4d6e8f"}, // Account Settings Write
		accessWriteGroups()...)
	allAccounts := map[string]string{}
	for _, id := range accounts {
		allAccounts[resAccountPrefix+id] = "*"
	}
	userTokID, userTok := e.IssueUserToken(userID, TokenSpec{
		Name: "parent: Create Additional Tokens",
		Policies: []Policy{
			{Effect: "allow", PermissionGroups: []string{groupAPITokensWrite}, Resources: map[string]string{resUserPrefix + userID: "*"}},
			{Effect: "allow", PermissionGroups: acctGroups, Resources: allAccounts},
		},
	})
	acctTokID, acctTok := e.IssueAccountToken(SeedAccount1, TokenSpec{
		Name: "parent: Account API Tokens Write",
		Policies: []Policy{
			{Effect: "allow", PermissionGroups: acctGroups, Resources: map[string]string{resAccountPrefix + SeedAccount1: "*"}},
		},
	})
	return Seeded{
		UserID: userID, AccountIDs: accounts,
		UserToken: userTok, UserTokenID: userTokID,
		AccountToken: acctTok, AccountTokenID: acctTokID,
	}
}

// Children are the tokens e holds besides s's two parents: what a test's
// runs made, and what its clean-up must leave gone.
func (s Seeded) Children(e *Emulator) []Token {
	var out []Token
	for _, t := range e.Tokens() {
		if t.ID != s.UserTokenID && t.ID != s.AccountTokenID {
			out = append(out, t)
		}
	}
	return out
}
