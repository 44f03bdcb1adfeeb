#!/usr/bin/env bash
# Runs a keyless broker on this machine against the local Cloudflare API emulator and a local
# OIDC issuer, in one command, and trades a job's OIDC token for a child token through it:
#
#   docs/broker-local.sh          # then leaves all three running until Ctrl-C
#   docs/broker-local.sh --once   # exchange, use and revoke one token, then stop
#
# Needs cf-scoped-token on PATH (or CF_SCOPED_TOKEN=/path/to/it), curl and jq. Everything
# listens on 127.0.0.1 only; the tokens are the emulator's and grant nothing anywhere else.
set -euo pipefail

bin=${CF_SCOPED_TOKEN:-cf-scoped-token}
once=false
[[ ${1:-} == --once ]] && once=true
aud=https://cf-broker.local # the audience the jobs ask their OIDC token for

dir=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# wait_for FILE PATTERN: wait up to 20 s for a line matching PATTERN.
wait_for() {
	for _ in $(seq 200); do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "broker-local: timed out waiting for $2 in $1:" >&2
	cat "$1" >&2
	return 1
}

# 1. The emulator and, beside it, the OIDC issuer with one job (the default claims: a push to
#    main of acme/site-deploy, repository_id 1104004353, owner id 46576199).
#    --print-env runs them in the background and prints export lines once they serve.
"$bin" emulator --listen 127.0.0.1:0 --oidc --oidc-listen 127.0.0.1:0 --print-env >"$dir/env"
# shellcheck disable=SC1091
. "$dir/env"
pids+=("$CF_EMULATOR_PID")

# 2. A policy: that repository, on main, may have Access apps and policies (read or write) and
#    organizations read on the first seeded account, for at most an hour.
account=${CF_EMULATOR_ACCOUNT_IDS%%,*}
cat >"$dir/policy.yaml" <<POLICY
audience: $aud
issuers:
  github: $CF_EMULATOR_OIDC_ISSUER
rules:
  - name: access-deploy
    issuer: github
    claims:
      repository_owner_id: "46576199"
      repository_id: "1104004353"
      ref: refs/heads/main
    grant:
      account-ids: [$account]
      scopes: [apps-and-policies:write, organizations:read]
      max-ttl: 1h
POLICY
"$bin" policy check "$dir/policy.yaml"

# 3. The broker, holding the emulator's parent token.
CF_SCOPED_TOKEN_API_TOKEN=$CF_EMULATOR_USER_TOKEN "$bin" broker --policy "$dir/policy.yaml" \
	--listen "127.0.0.1:${BROKER_PORT:-0}" --api-url "$CF_EMULATOR_API_URL" >"$dir/audit.log" 2>"$dir/broker.log" &
pids+=($!)
wait_for "$dir/broker.log" 'listening on http://'
broker=$(grep -Eo 'listening on http://[0-9.:]+' "$dir/broker.log" | head -1 | cut -d' ' -f3)
echo "broker-local: broker at $broker (policy $dir/policy.yaml, audit log $dir/audit.log)"

# 4. What a job does: get its OIDC token for the broker's audience, exchange it.
jwt=$(curl -fsS -H "Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
	"$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$aud" | jq -r .value)
answer=$(curl -sS "$broker/v1/token" \
	--data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
	--data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:id_token \
	--data-urlencode "subject_token=$jwt" \
	--data-urlencode scope=apps-and-policies:read \
	--data-urlencode ttl=15m)
child=$(jq -r '.access_token // empty' <<<"$answer")
if [[ -z $child ]]; then
	echo "broker-local: the exchange was refused: $answer" >&2
	exit 1
fi
echo "broker-local: granted (the token itself not shown):"
jq 'del(.access_token)' <<<"$answer"

# 5. The child works on the Access API of its account, and nowhere else.
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $child" \
	"$CF_EMULATOR_API_URL/accounts/$account/access/apps")
echo "broker-local: GET /accounts/$account/access/apps with the child: $status"
[[ $status == 200 ]]

# 6. Revoke it through the broker, as the action's post step does.
curl -fsS "$broker/v1/revoke" --data-urlencode "token=$child" >/dev/null
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $child" \
	"$CF_EMULATOR_API_URL/accounts/$account/access/apps")
echo "broker-local: revoked; the child now gets: $status"
[[ $status == 401 ]]
echo "broker-local: audit log:"
cat "$dir/audit.log"

if ! $once; then
	cat <<HELP

broker-local: running until Ctrl-C. In another shell:
  $(grep -E '^export ACTIONS_ID_TOKEN_REQUEST_(URL|TOKEN)=' "$dir/env")
  # then as in step 4 of this script, against $broker
HELP
	wait
fi
