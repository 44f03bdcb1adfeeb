#!/usr/bin/env bash
# baseline.sh — what cf-scoped-token's main and post steps do, written by hand with curl and jq,
# the way a careful user would put it in a workflow's run: steps. bench/ measures the binary
# against it: same API, same job, nothing clever.
#
#   CF_API_TOKEN   the parent token ("API Tokens Write"); from the environment only
#   CF_ACCOUNT_ID  the one account the child may touch
#   CF_API_URL     API base URL (default https://api.cloudflare.com/client/v4)
#   CF_TTL         the child's lifetime in seconds (default 3600)
#
# Four requests: the permission-group list (the id is picked by name and account scope with jq),
# the create with expires_on, a verify with the new token, and the delete. Care taken:
#   - the token is masked (::add-mask::) before anything else could print it, and no secret is
#     ever on a command line: curl reads the Authorization header from a file descriptor;
#   - once the token exists it is deleted on every exit, failure included (trap);
#   - the idempotent calls (GET, DELETE) are retried by curl on 429/5xx; the create is not,
#     since a repeated create could leave a second token behind;
#   - every answer's "success" is checked, and a failure prints Cloudflare's errors.
set -euo pipefail

api=${CF_API_URL:-https://api.cloudflare.com/client/v4}
api=${api%/}
: "${CF_API_TOKEN:?CF_API_TOKEN is not set}"
: "${CF_ACCOUNT_ID:?CF_ACCOUNT_ID is not set}"
ttl=${CF_TTL:-3600}
group='Access: Apps and Policies Write'
name="baseline ${GITHUB_RUN_ID:-local}.${GITHUB_RUN_ATTEMPT:-1} $RANDOM$RANDOM"

# cf TOKEN METHOD PATH [CURL ARGS...]: one API call; prints the answer's body, or fails with
# Cloudflare's errors on stderr.
cf() {
	local auth=$1 method=$2 path=$3 body retry=()
	shift 3
	if [[ $method == GET || $method == DELETE ]]; then
		retry=(--retry 3)
	fi
	if ! body=$(curl -sS --fail-with-body --connect-timeout 10 --max-time 60 "${retry[@]}" \
		-X "$method" -H @<(printf 'Authorization: Bearer %s\n' "$auth") "$@" "$api$path"); then
		printf '::error::%s %s failed: %s\n' "$method" "$path" \
			"$(jq -c '.errors // empty' <<<"$body" 2>/dev/null || echo 'no Cloudflare answer')" >&2
		return 1
	fi
	printf '%s' "$body"
}

groups=$(cf "$CF_API_TOKEN" GET /user/tokens/permission_groups)
# The name alone is not enough: some Access groups exist once for accounts and once for zones.
group_id=$(jq -er --arg name "$group" \
	'select(.success) | [.result[] | select(.name == $name and any(.scopes[]; . == "com.cloudflare.api.account"))][0].id' \
	<<<"$groups")

expires=$(date -u -d "+$ttl seconds" +%Y-%m-%dT%H:%M:%SZ)
request=$(jq -nc --arg name "$name" --arg group "$group_id" --arg account "$CF_ACCOUNT_ID" --arg expires "$expires" \
	'{name: $name, expires_on: $expires,
	  policies: [{effect: "allow", permission_groups: [{id: $group}],
	              resources: {("com.cloudflare.api.account." + $account): "*"}}]}')
created=$(cf "$CF_API_TOKEN" POST /user/tokens -H 'Content-Type: application/json' --data-binary @- <<<"$request")
{ read -r token_id && read -r token; } < <(jq -er 'select(.success) | .result.id, .result.value' <<<"$created")
echo "::add-mask::$token"

delete() {
	if cf "$CF_API_TOKEN" DELETE "/user/tokens/$token_id" >/dev/null; then
		echo "deleted token $token_id"
	else
		echo "::error::token $token_id was not deleted; it expires at $expires" >&2
		exit 1
	fi
}
trap delete EXIT

status=$(cf "$token" GET /user/tokens/verify | jq -er 'select(.success) | .result.status')
if [[ $status != active ]]; then
	echo "::error::token $token_id is $status, not active" >&2
	exit 1
fi
echo "token $token_id is active until $expires"
