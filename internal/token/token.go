// Package token is the domain of cf-scoped-token: what a user may ask for,
// how it is validated, how scope names resolve to Cloudflare permission
// groups, and the one policy a child token carries. It does no I/O and reads
// no clock: callers pass the time, the permission-group list and the random
// name suffix in.
package token

import (
	"slices"
	"strings"
	"time"
)

// Level is the access level of a scope item.
type Level string

// The levels a scope item may ask for. Revoke exists only where Cloudflare
// has a "… Revoke" group of that base name (Access: Organizations…, Access:
// Apps and Policies); the permission input, a default for every item, is
// read or write.
const (
	Read   Level = "read"
	Write  Level = "write"
	Revoke Level = "revoke"
)

// title is the level as Cloudflare spells it at the end of a group name.
func (l Level) title() string {
	switch l {
	case Write:
		return "Write"
	case Revoke:
		return "Revoke"
	}
	return "Read"
}

// Owner says who owns the child token, and so which endpoints hold it.
type Owner string

// The two kinds of owner (reference/cloudflare-api.md, Endpoints).
const (
	// OwnerUser: the parent token's user, /user/tokens.
	OwnerUser Owner = "user"
	// OwnerAccount: an account, /accounts/{account_id}/tokens.
	OwnerAccount Owner = "account"
)

// Mode is what a run does.
type Mode string

// The three modes of SPEC's "mode" input.
const (
	ModeCreate Mode = "create"
	ModeRevoke Mode = "revoke"
	ModeSweep  Mode = "sweep"
)

// Endpoint names the token endpoints a call goes to: the user's
// (AccountID empty) or one account's.
type Endpoint struct {
	AccountID string
}

// IsAccount reports whether the endpoint is an account's.
func (e Endpoint) IsAccount() bool { return e.AccountID != "" }

// PermissionGroup is one entry of Cloudflare's permission-group list.
type PermissionGroup struct {
	ID     string
	Name   string
	Scopes []string
}

// AccountScope is the scope of permission groups that act on account
// resources; a zone-scoped twin of the same name has another id
// (reference/cloudflare-api.md, Access permission groups).
const AccountScope = "com.cloudflare.api.account"

// hasScope reports whether the group carries the given scope.
func (g PermissionGroup) hasScope(scope string) bool { return slices.Contains(g.Scopes, scope) }

// ManagesTokens reports whether a permission group reads or manages API
// tokens ("API Tokens Write", "Account API Tokens Read", …). A child may
// never hold one (SPEC, "No token-making children"): it could make tokens
// of its own that outlive the job.
func ManagesTokens(groupName string) bool {
	return strings.Contains(strings.ToLower(groupName), "api tokens")
}

// Policy is a token policy: the effect, permission group ids and resources.
type Policy struct {
	Effect           string
	PermissionGroups []string
	Resources        map[string]string
}

// AllowPolicy is the one policy a child token carries: allow the given
// groups on each listed account, nothing else.
func AllowPolicy(accountIDs, groupIDs []string) Policy {
	resources := make(map[string]string, len(accountIDs))
	for _, id := range accountIDs {
		resources[AccountScope+"."+id] = "*"
	}
	return Policy{Effect: "allow", PermissionGroups: groupIDs, Resources: resources}
}

// Spec is everything a create call sends. NotBefore is deliberately absent:
// runner clock skew must never make a fresh token unusable (SPEC).
type Spec struct {
	Name       string
	Policies   []Policy
	ExpiresOn  time.Time
	AllowedIPs []string // CIDRs; empty: no IP condition
}

// Info describes a token as the API lists it (never its value).
type Info struct {
	ID        string
	Name      string
	Status    string
	IssuedOn  time.Time
	ExpiresOn time.Time // zero: never expires
	// What its allow policies grant, as the API reports them.
	AccountIDs []string
	Groups     []PermissionGroup
}

// Created is a token the API has just made, with its value.
type Created struct {
	Info
	Value Secret
}

// ExpiresOn is the expiry of a token made at now that lives for ttl: whole
// seconds, UTC.
func ExpiresOn(now time.Time, ttl time.Duration) time.Time {
	return now.UTC().Truncate(time.Second).Add(ttl)
}

// NamePrefix starts every default token name; sweep deletes only tokens
// whose name starts with it.
const NamePrefix = "cf-scoped-token "

// IsOwnName reports whether a token name was made by this tool's default
// naming, the only tokens sweep may touch.
func IsOwnName(name string) bool { return strings.HasPrefix(name, NamePrefix) }
