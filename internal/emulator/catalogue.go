package emulator

import "slices"

// The permission-group catalogue the emulator serves from
// GET /user/tokens/permission_groups and GET /accounts/{account_id}/tokens/permission_groups.
//
// The Access groups, "API Tokens Read/Write", "Account API Tokens Read/Write" and
// "Zero Trust Write" carry the real ids and scopes listed in
// reference/cloudflare/access-permission-groups.json (see reference/cloudflare-api.md,
// "Access permission groups"). Some Access names exist twice, once account-scoped and once
// zone-scoped, with different ids: clients must resolve by name and scope. The rest are
// filler so that name resolution has realistic neighbours; a few ids come from the example
// in the 2026-07 OpenAPI schema (Billing, Load Balancing, Workers KV, Workers Scripts) and
// the others are made up.

// Permission-group scopes (reference/cloudflare-api.md, "Endpoints": scopes values).
const (
	scopeAccount = "com.cloudflare.api.account"
	scopeZone    = "com.cloudflare.api.account.zone"
	scopeUser    = "com.cloudflare.api.user"
)

// Ids of the groups the emulator itself enforces.
const (
	groupAPITokensRead         = "0cc3a61731504c89b99ec1be78b77aa0"
	groupAPITokensWrite        = "686d18d5ac6c441c867cbf6771e58a0a"
	groupAccountAPITokensRead  = "eb56a6953c034b9d97dd838155666f06"
	groupAccountAPITokensWrite = "5bc3f8b21c554832afc660159ab75fa4"

	groupAccessOrgsRead           = "26bc23f853634eb4bff59983b9064fde"
	groupAccessOrgsWrite          = "bfe0d8686a584fa680f4c53b5eb0de6d"
	groupAccessAppsRead           = "7ea222f6d5064cfa89ea366d7c1fee89"
	groupAccessAppsWrite          = "1e13c5124ca64b72b1969a67e8829049"
	groupAccessServiceTokensRead  = "91f7ce32fa614d73b7e1fc8f0e78582b"
	groupAccessServiceTokensWrite = "a1c0fec57cf94af79479a6d827fa518c"

	// Zone-scoped twins of "Access: Apps and Policies Read/Write": same names, other ids.
	// They grant nothing on account endpoints.
	groupAccessAppsReadZone  = "eb258a38ea634c86a0c89da6b27cb6b6"
	groupAccessAppsWriteZone = "959972745952452f8be2452be8cbb9f2"
)

// Permission-group categories (the enum in the 2026-07 schema's permission-group item).
const (
	catZeroTrust = "cloudflare_one_and_zero_trust"
	catAccount   = "account_and_billing"
	catDNS       = "dns_and_zones"
	catDev       = "developer_platform"
	catNetwork   = "network_services"
	catCache     = "cache_and_performance"
	catAnalytics = "analytics_and_logs"
)

// permissionGroup is one catalogue entry as the API lists it.
type permissionGroup struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Scopes   []string `json:"scopes"`
	Category string   `json:"category,omitempty"`
}

// hasScope reports whether the group applies to resources of the given scope.
func (g permissionGroup) hasScope(scope string) bool { return slices.Contains(g.Scopes, scope) }

// catalogue returns a fresh copy of the permission-group list, so that no emulator shares
// (or can mutate) another's.
func catalogue() []permissionGroup {
	acct := func(id, name, cat string) permissionGroup {
		return permissionGroup{ID: id, Name: name, Scopes: []string{scopeAccount}, Category: cat}
	}
	zone := func(id, name, cat string) permissionGroup {
		return permissionGroup{ID: id, Name: name, Scopes: []string{scopeZone}, Category: cat}
	}
	user := func(id, name, cat string) permissionGroup {
		return permissionGroup{ID: id, Name: name, Scopes: []string{scopeUser}, Category: cat}
	}
	return []permissionGroup{
		// Access (real ids and scopes).
		zone(groupAccessAppsReadZone, "Access: Apps and Policies Read", catZeroTrust),
		acct(groupAccessAppsRead, "Access: Apps and Policies Read", catZeroTrust),
		zone("6db4e222e21248ac96a3f4c2a81e3b41", "Access: Apps and Policies Revoke", catZeroTrust),
		acct("6c9d1cfcfc6840a987d1b5bfb880a841", "Access: Apps and Policies Revoke", catZeroTrust),
		zone(groupAccessAppsWriteZone, "Access: Apps and Policies Write", catZeroTrust),
		acct(groupAccessAppsWrite, "Access: Apps and Policies Write", catZeroTrust),
		acct("b05b28e839c54467a7d6cba5d3abb5a3", "Access: Audit Logs Read", catZeroTrust),
		acct("08e61dabe81a422dab0dea6fdef1a98a", "Access: Custom Pages Read", catZeroTrust),
		acct("4e5fd8ac327b4a358e48c66fcbeb856d", "Access: Custom Pages Write", catZeroTrust),
		acct("0f4841f80adb4bada5a09493300e7f8d", "Access: Device Posture Read", catZeroTrust),
		acct("2fc1072ee6b743828db668fcb3f9dee7", "Access: Device Posture Write", catZeroTrust),
		acct("4f3196a5c95747b6ad82e34e1d0a694f", "Access: Mutual TLS Certificates Read", catZeroTrust),
		acct("29d3afbfd4054af9accdd1118815ed05", "Access: Mutual TLS Certificates Write", catZeroTrust),
		acct(groupAccessOrgsRead, "Access: Organizations, Identity Providers, and Groups Read", catZeroTrust),
		acct("7121a0c7e9ed46e3829f9cca2bb572aa", "Access: Organizations, Identity Providers, and Groups Revoke", catZeroTrust),
		acct(groupAccessOrgsWrite, "Access: Organizations, Identity Providers, and Groups Write", catZeroTrust),
		acct("b8b7514ce5364cd8ac0455f3eb16eb5f", "Access: Policy Test Read", catZeroTrust),
		acct("6d23f290472f4e6fad5c4398c057c356", "Access: Policy Test Write", catZeroTrust),
		acct("de99c87e48d642ce8c985d027905b475", "Access: Population Read", catZeroTrust),
		acct("bc783549a3a741aaa10556faf8b485bb", "Access: Population Write", catZeroTrust),
		acct("e985ca9351db460faebbe8681c48e560", "Access: SCIM logs read", catZeroTrust),
		acct("99ff99e4e30247a99d3777a8c4c18541", "Access: SSH Auditing Read", catZeroTrust),
		acct("d30c9ad8b5224e7cb8d41bcb4757effc", "Access: SSH Auditing Write", catZeroTrust),
		acct(groupAccessServiceTokensRead, "Access: Service Tokens Read", catZeroTrust),
		acct(groupAccessServiceTokensWrite, "Access: Service Tokens Write", catZeroTrust),
		acct("b33f02c6f7284e05a6f20741c0bb0567", "Zero Trust Write", catZeroTrust),

		// Token management (real ids and scopes).
		acct(groupAccountAPITokensRead, "Account API Tokens Read", catAccount),
		acct(groupAccountAPITokensWrite, "Account API Tokens Write", catAccount),
		user(groupAPITokensRead, "API Tokens Read", catAccount),
		user(groupAPITokensWrite, "API Tokens Write", catAccount),

		// Filler: ids from the OpenAPI example.
		acct("7cf72faf220841aabcfdfab81c43c4f6", "Billing Read", catAccount),
		acct("9d24387c6e8544e2bc4024a03991339f", "Load Balancing: Monitors and Pools Read", catNetwork),
		acct("d2a1802cc9a34e30852f8b33869b2f3c", "Load Balancing: Monitors and Pools Write", catNetwork),
		acct("8b47d2786a534c08a1f94ee8f9f599ef", "Workers KV Storage Read", catDev),
		acct("f7f0eda5697f475c90846e879bab8666", "Workers KV Storage Write", catDev),
		acct("1a71c399035b4950a1bd1466bbe4f420", "Workers Scripts Read", catDev),
		acct("e086da7e2179491d91ee5f35b3ca210a", "Workers Scripts Write", catDev),

		// Filler: made-up ids.
		acct("3f8c2a4d9e1b4c7a8d2e6f0a1b3c5d7e", "Account Settings Read", catAccount),
		acct("4a9d3b5e0f2c4d8b9e3f7a1b2c4d6e8f", "Account Settings Write", catAccount),
		acct("5b0e4c6f1a3d4e9c0f4a8b2c3d5e7f90", "Account Analytics Read", catAnalytics),
		zone("6c1f5d7a2b4e4f0d1a5b9c3d4e6f8a01", "DNS Read", catDNS),
		zone("7d2a6e8b3c5f4a1e2b6c0d4e5f7a9b12", "DNS Write", catDNS),
		zone("8e3b7f9c4d6a4b2f3c7d1e5f6a8b0c23", "Zone Read", catDNS),
		zone("9f4c8a0d5e7b4c3a4d8e2f6a7b9c1d34", "Zone Write", catDNS),
		zone("a05d9b1e6f8c4d4b5e9f3a7b8c0d2e45", "Cache Purge", catCache),
		zone("b16e0c2f7a9d4e5c6f0a4b8c9d1e3f56", "Workers Routes Read", catDev),
		zone("c27f1d3a8b0e4f6d7a1b5c9d0e2f4a67", "Workers Routes Write", catDev),
		user("d38a2e4b9c1f4a7e8b2c6d0e1f3a5b78", "User Details Read", catAccount),
		user("e49b3f5c0d2a4b8f9c3d7e1f2a4b6c89", "Memberships Read", catAccount),
	}
}
