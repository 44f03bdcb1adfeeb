#!/usr/bin/env bash
# test/container/run.sh — the real container, run the way the GitHub runner runs it.
#
# Builds ./Dockerfile with Podman (no registry needed: the Go base is a stand-in made from this
# machine's Go toolchain, the final base is scratch), then runs the image's main and post phases as
# actions/runner's ContainerActionHandler does (shared/reference/github-runner.md §1, §2, §5):
# `run --rm --workdir /github/workspace`, the five /github mounts, --entrypoint and args from
# action.yml, INPUT_* for every declared input, GITHUB_* file-command paths with fresh GUIDs, and
# STATE_* from the main phase's state file for post. The API is the project's own emulator, served
# on loopback by the same sources built on the host.
#
# Fails loudly (exit 1) when Podman cannot run, when the image is wrong, or when a promise breaks.
# Prints the measured numbers at the end. Run as root: bash test/container/run.sh
# KEEP=1 keeps the work directory (logs, file-command files) for a look afterwards.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="/usr/local/go/bin:$PATH"

say() { printf 'container: %s\n' "$*"; }
fail() {
	printf 'container: FAIL: %s\n' "$*" >&2
	exit 1
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

[ "$(id -u)" = 0 ] || fail "run as root: Podman runs rootful here, as Docker does on a runner"

# --- Podman ----------------------------------------------------------------------------------
need=()
command -v podman >/dev/null || need+=(podman)
# runc: Debian's package, or the one a Docker engine ships (GitHub's Ubuntu images).
runc=/usr/sbin/runc
[ -x "$runc" ] || runc=$(command -v runc || true)
[ -n "$runc" ] || { need+=(runc); runc=/usr/sbin/runc; }
[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] || need+=(busybox-static)
command -v curl >/dev/null || need+=(curl)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if ((${#need[@]})); then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Docker's default ulimits are not allowed for an unprivileged sandbox; the runs set their own.
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
	mkdir -p /etc/containers
	printf '[containers]\ndefault_ulimits = []\n' >"$conf"
elif ! grep -q '^default_ulimits = \[\]' "$conf"; then
	mkdir -p /etc/containers/containers.conf.d
	printf '[containers]\ndefault_ulimits = []\n' >/etc/containers/containers.conf.d/50-cf-scoped-token-test.conf
fi

limits=(--ulimit nofile=20000:20000 --ulimit nproc=1000:1000)

work=$(mktemp -d /tmp/cf-scoped-token-container.XXXXXX)
# Podman gets a storage root of this run's own: every run starts like a fresh machine (no layers
# of earlier runs for the build cache to pick, which made the cache check below depend on the
# machine's history), and the machine's other images are never touched.
pm() {
	podman --root "$work/storage" --runroot "$work/runroot" --storage-driver=vfs \
		--runtime "$runc" --cgroup-manager=cgroupfs "$@"
}
emu_pid=
broker_pid=
cleanup() {
	if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; fi
	if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; fi
	# The storage root holds gigabytes of vfs layers: it goes even with KEEP (logs and files stay).
	pm rm -a -f >/dev/null 2>&1 || true
	chmod -R u+w "$work/storage" 2>/dev/null || true
	rm -rf "$work/storage" "$work/runroot"
	if [ -n "${KEEP:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'fail "line $LINENO: a command failed (exit $?)"' ERR

pm info >"$work/podman-info" 2>&1 || {
	cat "$work/podman-info" >&2
	fail "podman cannot run on this machine (see above)"
}
say "$(podman --version), runtime $("$runc" --version | head -1)"

# --- action.yml: inputs with defaults, entrypoints, args ---------------------------------------
action="$root/action.yml"
# name<TAB>default for every declared input (no default: empty, as the runner does).
inputs_tsv=$(awk '
	function flush() { if (name != "") printf "%s\t%s\n", name, def; name = ""; def = "" }
	/^inputs:/ { inside = 1; next }
	/^[^ #]/ { if (inside) flush(); inside = 0 }
	!inside { next }
	/^  [^ #]/ { flush(); name = $1; sub(/:$/, "", name); next }
	/^    default:/ {
		v = $0; sub(/^    default:[ ]*/, "", v); sub(/[ ]+$/, "", v)
		if (v ~ /^[>|]/) { print "block scalar default of " name " not supported" > "/dev/stderr"; exit 1 }
		if (v ~ /^".*"$/ || v ~ /^\x27.*\x27$/) v = substr(v, 2, length(v) - 2)
		def = v
	}
	END { if (inside) flush() }' "$action")
runs_value() { awk -v k="$1" '/^runs:/ {r = 1; next} /^[^ #]/ {r = 0} r && $1 == k ":" {print $2}' "$action"; }
entrypoint=$(runs_value entrypoint)
post_entrypoint=$(runs_value post-entrypoint)
mapfile -t args < <(awk '/^runs:/ {r = 1; next} /^[^ #]/ {r = 0} r && /^  args:/ {a = 1; next} r && a && /^    - / {sub(/^    - /, ""); print; next} r && a {a = 0}' "$action")
[ -n "$entrypoint" ] && [ -n "$post_entrypoint" ] || fail "action.yml: runs.entrypoint or runs.post-entrypoint missing"
[ "$(grep -c . <<<"$inputs_tsv")" -ge 10 ] || fail "action.yml: could not read the inputs"
say "action.yml: entrypoint $entrypoint, post-entrypoint $post_entrypoint, args [${args[*]}], $(grep -c . <<<"$inputs_tsv") inputs"

# input_env KEY=VALUE… : INPUT_* for every declared input, `with:` values over defaults
# (reference §1: only spaces become _, upper-cased, hyphens kept: INPUT_API-TOKEN).
input_env() {
	local name def kv with_name
	while IFS=$'\t' read -r name def; do
		for kv in "$@"; do
			with_name=${kv%%=*}
			if [ "$with_name" = "$name" ]; then def=${kv#*=}; fi
		done
		name=${name// /_}
		printf 'INPUT_%s=%s\0' "${name^^}" "$def"
	done <<<"$inputs_tsv"
}

# fc FILE [KEY]: parse a file-command file as the runner does (reference §3); with KEY print its
# value (last one wins; exit 1 if absent), without print the keys. Exit 2 on a malformed file.
fc() {
	awk -v key="${2-}" -v list="$([ $# -lt 2 ] && echo 1)" '
		inhd { if ($0 == delim) { inhd = 0; got(k, buf) } else { buf = (nb++ ? buf "\n" : "") $0 }; next }
		$0 == "" { next }
		{
			eq = index($0, "="); hd = index($0, "<<")
			if (eq && (!hd || eq < hd)) { got(substr($0, 1, eq - 1), substr($0, eq + 1)); next }
			if (hd) { k = substr($0, 1, hd - 1); delim = substr($0, hd + 2); if (k == "" || delim == "") exit 2; inhd = 1; buf = ""; nb = 0; next }
			exit 2
		}
		function got(name, value) { if (list) print name; else if (name == key) { val = value; found = 1 } }
		END { if (inhd) exit 2; if (!list && !found) exit 1; if (!list) printf "%s", val }' "$1"
}

# --- host build of the same sources and the emulator ---------------------------------------
say "building the host binary (go build -o … .)"
mkdir -p "$work/bin"
(cd "$root" && go build -o "$work/bin/cf-scoped-token" .) || fail "go build failed"
ln -s cf-scoped-token "$work/bin/cf-scoped-token-post"
bin="$work/bin/cf-scoped-token"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_line FILE PATTERN PID TRIES: waits up to TRIES × 0.1 s, or until PID exits, for a line of
# FILE to match PATTERN; its status says whether one does.
wait_line() {
	for _ in $(seq "$4"); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "$2" "$1" 2>/dev/null
}
for try in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	port_free "$port" || continue
	# --oidc: a local OIDC issuer beside it, shaped like GitHub's, for the keyless run below.
	"$bin" emulator --listen "127.0.0.1:$port" --oidc --oidc-listen 127.0.0.1:0 >"$work/emulator.out" 2>"$work/emulator.err" &
	emu_pid=$!
	wait_line "$work/emulator.out" '^# the emulator serves' "$emu_pid" 100 && break
	kill "$emu_pid" 2>/dev/null || true
	emu_pid=
done
[ -n "$emu_pid" ] || {
	cat "$work/emulator.err" >&2
	fail "the emulator did not start"
}
# The emulator prints export lines, single-quoted for the shell.
emu() { sed -n "s/^export $1='\(.*\)'\$/\1/p" "$work/emulator.out" | head -1; }
api_url=$(emu CF_EMULATOR_API_URL)
parent=$(emu CF_EMULATOR_USER_TOKEN)
account=$(emu CF_EMULATOR_ACCOUNT_IDS)
account=${account%%,*}
[ -n "$api_url" ] && [ -n "$parent" ] && [ -n "$account" ] || fail "emulator printed no URL, token or account: $(cat "$work/emulator.out")"
say "emulator at $api_url (pid $emu_pid)"

# api METHOD PATH TOKEN: print the HTTP status; the body goes to $work/api.body.
api() { curl -sS -o "$work/api.body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" "$api_url$2"; }

# --- stand-in for the Go base image ---------------------------------------------------------
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
go_image="localhost/cf-scoped-token-test/golang:$gover-busybox-1"
if ! pm image exists "$go_image"; then
	say "making $go_image from $goroot and busybox-static"
	fs="$work/go-fs"
	mkdir -p "$fs/bin" "$fs/usr/local/go" "$fs/etc/ssl/certs" "$fs/tmp" "$fs/root" "$fs/go"
	chmod 1777 "$fs/tmp"
	cp /bin/busybox "$fs/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$fs/bin/$applet"
	done
	# Only what `go build` of a pure-Go program needs: every layer of a vfs build copies it all.
	tar -C "$goroot" --exclude='*_test.go' --exclude=testdata --exclude=./test --exclude=./api --exclude=./doc \
		--exclude=./src/cmd --exclude='./pkg/tool/*/cover' --exclude='./pkg/tool/*/fix' \
		--exclude='./pkg/tool/*/vet' --exclude='./pkg/tool/*/preprofile' -c . |
		tar -C "$fs/usr/local/go" -x
	cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/ca-certificates.crt"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$fs/etc/passwd"
	tar -C "$fs" -c . | pm import \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change 'WORKDIR /go' \
		- "$go_image" >"$work/import.log" 2>&1 || { cat "$work/import.log" >&2; fail "podman import failed"; }
	rm -rf "$fs"
fi
pm run --rm --network=host "${limits[@]}" "$go_image" go version >"$work/go-version" 2>&1 ||
	{ cat "$work/go-version" >&2; fail "cannot run a container (podman run)"; }
say "Go base stand-in runs: $(cat "$work/go-version")"

# --- build the image from Dockerfile --------------------------------------------------------
ctx="$work/context"
mkdir "$ctx"
tar -C "$root" --exclude=./.git -c . | tar -C "$ctx" -x
image=localhost/cf-scoped-token:container-test
# A version of this run's own, stamped into the binary: the stages below run the image by the id
# this build wrote, and its binary must report this version, so no image of an earlier run (or of
# another storage root) can stand in for it.
build_version="container-test-$(cat /proc/sys/kernel/random/uuid)"
build() {
	pm build --pull=never --network=host "${limits[@]}" "${@:2}" \
		--build-arg VERSION="$build_version" --iidfile "$work/iid-$(basename "$1")" \
		--build-arg TARGETOS="$(go env GOOS)" --build-arg TARGETARCH="$(go env GOARCH)" \
		--build-arg GO_IMAGE="$go_image" --build-arg BASE_IMAGE=scratch \
		--build-arg GOPROXY="$(go env GOPROXY)" --build-arg GOFLAGS="$(go env GOFLAGS)" \
		-f "$ctx/Dockerfile" -t "$1" "$ctx" >"$work/build.log" 2>&1 || {
		tail -40 "$work/build.log" >&2
		fail "podman build failed"
	}
}
say "podman build --no-cache (modules from the proxy)"
t=$(date +%s%N)
build "$image" --no-cache
build_cold_ms=$(ms_since "$t")
# The same build after a source change: the module layer and the go build cache are warm.
printf '// rebuild marker %s written by test/container/run.sh\n\npackage main\n' "$(cat /proc/sys/kernel/random/uuid)" >"$ctx/zz_container_test_rebuild.go"
t=$(date +%s%N)
build "$image-rebuild"
build_warm_ms=$(ms_since "$t")
grep -A1 'RUN go mod download' "$work/build.log" | grep -q 'Using cache' || {
	grep -E 'STEP|Using cache' "$work/build.log" >&2
	fail "the rebuild did not reuse the module layer"
}
grep -A1 'COPY \. \.' "$work/build.log" | grep -q 'Using cache' && fail "the rebuild did not see the changed source"
pm rmi -f "$image-rebuild" >/dev/null

image_id=$(cat "$work/iid-$(basename "$image")")
[ -n "$image_id" ] || fail "podman build wrote no image id"
[ "$(pm image inspect --format '{{.Id}}' "$image")" = "${image_id#sha256:}" ] || fail "the tag $image is not the image just built"
size=$(pm image inspect --format '{{.Size}}' "$image")
entry=$(pm image inspect --format '{{json .Config.Entrypoint}}' "$image")
user=$(pm image inspect --format '{{.Config.User}}' "$image")
[ "$entry" = '["/usr/local/bin/cf-scoped-token"]' ] || fail "ENTRYPOINT is $entry"
[ -z "$user" ] || fail "the image sets USER $user; a Docker action must run as root"
cid=$(pm create "$image")
pm export "$cid" >"$work/image.tar"
pm rm "$cid" >/dev/null
tar -tvf "$work/image.tar" >"$work/image-files"
mkdir "$work/image-fs"
tar -C "$work/image-fs" -xf "$work/image.tar"
grep -Eq '^l.* usr/local/bin/cf-scoped-token-post -> cf-scoped-token$' "$work/image-files" ||
	fail "no symlink cf-scoped-token-post -> cf-scoped-token in the image: $(cat "$work/image-files")"
grep -Eq '^-.* usr/local/bin/cf-scoped-token$' "$work/image-files" || fail "no /usr/local/bin/cf-scoped-token"
grep -Eq '^-.* etc/ssl/certs/ca-certificates.crt$' "$work/image-files" || fail "no CA bundle in the image"
say "image $image: $size bytes; build --no-cache ${build_cold_ms} ms, rebuild after a source change ${build_warm_ms} ms; files:"
sed 's/^/container:   /' "$work/image-files"

got_version=$(pm run --rm --pull=never --network=host "${limits[@]}" "$image_id" version 2>&1) ||
	fail "podman run $image_id version: $got_version"
[ "$got_version" = "cf-scoped-token $build_version" ] || fail "the image run reports \"$got_version\", not this build's $build_version"
say "image id ${image_id#sha256:} runs this build's binary ($build_version)"

# --- the runner ------------------------------------------------------------------------------
gh="$work/github"
mkdir -p "$gh"/{workspace,home,workflow,file_commands,runner_temp}
echo '{}' >"$gh/workflow/event.json"
mounts=(-v "$gh/workspace:/github/workspace" -v "$gh/home:/github/home" -v "$gh/workflow:/github/workflow"
	-v "$gh/file_commands:/github/file_commands" -v "$gh/runner_temp:/github/runner_temp")

# stage NAME ENTRYPOINT KEY=VALUE…: one `docker run` of a stage. Fresh, empty file-command files
# per stage; every variable is passed as `-e KEY`, its value read from podman's own environment,
# as the runner does. Sets rc, ms, and files $work/NAME.{stdout,stderr}; F_OUTPUT etc. name the
# stage's file-command files on the host.
stage() {
	local name=$1 ep=$2
	shift 2
	local guid
	guid=$(cat /proc/sys/kernel/random/uuid)
	F_OUTPUT="$gh/file_commands/set_output_$guid"
	F_STATE="$gh/file_commands/save_state_$guid"
	F_ENV="$gh/file_commands/set_env_$guid"
	F_SUMMARY="$gh/file_commands/step_summary_$guid"
	: >"$F_OUTPUT"
	: >"$F_STATE"
	: >"$F_ENV"
	: >"$gh/file_commands/add_path_$guid"
	: >"$F_SUMMARY"
	local -a vars=("$@"
		HOME=/github/home CI=true GITHUB_ACTIONS=true
		GITHUB_OUTPUT="/github/file_commands/set_output_$guid"
		GITHUB_STATE="/github/file_commands/save_state_$guid"
		GITHUB_ENV="/github/file_commands/set_env_$guid"
		GITHUB_PATH="/github/file_commands/add_path_$guid"
		GITHUB_STEP_SUMMARY="/github/file_commands/step_summary_$guid"
		GITHUB_WORKSPACE=/github/workspace GITHUB_EVENT_PATH=/github/workflow/event.json
		GITHUB_EVENT_NAME=push GITHUB_REPOSITORY=cf-scoped-token/cf-scoped-token
		GITHUB_REPOSITORY_OWNER=cf-scoped-token GITHUB_RUN_ID=4242 GITHUB_RUN_NUMBER=7
		GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=container-test GITHUB_ACTION=__self GITHUB_ACTOR=octocat
		GITHUB_WORKFLOW=ci GITHUB_SHA=0000000000000000000000000000000000000000
		GITHUB_REF=refs/heads/main GITHUB_SERVER_URL=https://github.com
		GITHUB_API_URL=https://api.github.com RUNNER_OS=Linux RUNNER_ARCH=X64
		RUNNER_TEMP=/github/runner_temp RUNNER_NAME=container-test)
	local -a flags=()
	local kv
	for kv in "${vars[@]}"; do flags+=(-e "${kv%%=*}"); done
	local t
	t=$(date +%s%N)
	rc=0
	env "${vars[@]}" timeout 120 podman --root "$work/storage" --runroot "$work/runroot" --storage-driver=vfs \
		--runtime "$runc" --cgroup-manager=cgroupfs \
		run --rm --pull=never --network=host "${limits[@]}" --workdir /github/workspace "${mounts[@]}" \
		--entrypoint "$ep" "${flags[@]}" "$image_id" "${args[@]}" \
		>"$work/$name.stdout" 2>"$work/$name.stderr" || rc=$?
	ms=$(ms_since "$t")
}
# show prints a stage's output for the log, with the value of every
# ::add-mask:: line left out: the CI log is no place for a token or a JWT,
# not even a test one.
show() {
	sed -e 's/^::add-mask::.*/::add-mask::[value withheld]/' -e "s/^/container:   $1 stdout: /" "$work/$1.stdout"
	sed -e 's/^::add-mask::.*/::add-mask::[value withheld]/' -e "s/^/container:   $1 stderr: /" "$work/$1.stderr"
}
# secret_checks NAME SECRET LABEL: SECRET appears in the stage's output only after (or as) its
# own ::add-mask:: line on stdout, never on stderr.
mask_checks() {
	local name=$1 secret=$2 label=$3 first
	first=$(grep -nF -- "$secret" "$work/$name.stdout" | head -1 || true)
	if [ -n "$first" ] && [ "${first#*:}" != "::add-mask::$secret" ]; then
		fail "$name: the $label appears on stdout before its ::add-mask:: (line ${first%%:*})"
	fi
	if grep -F -- "$secret" "$work/$name.stderr" | grep -vqxF -- "::add-mask::$secret"; then
		fail "$name: the $label appears on stderr"
	fi
}
# The parent token may appear only inside its own ::add-mask:: line, nowhere else.
parent_checks() {
	local name=$1 f
	for f in "$work/$name.stdout" "$work/$name.stderr"; do
		if grep -F -- "$parent" "$f" | grep -vqxF -- "::add-mask::$parent"; then
			fail "$name: the parent token appears in $(basename "$f") outside ::add-mask::"
		fi
	done
	for f in "$F_OUTPUT" "$F_STATE" "$F_ENV" "$F_SUMMARY"; do
		! grep -qF -- "$parent" "$f" || fail "$name: the parent token was written to $(basename "$f")"
	done
}

with=(api-token="$parent" account-ids="$account" api-url="$api_url" ttl=15m)
mapfile -d '' -t main_env < <(input_env "${with[@]}")

# main
stage main "$entrypoint" "${main_env[@]}"
show main
[ "$rc" = 0 ] || fail "main exited $rc"
main_ms=$ms
fc "$F_OUTPUT" >/dev/null || fail "main: GITHUB_OUTPUT does not parse"
fc "$F_STATE" >/dev/null || fail "main: GITHUB_STATE does not parse"
for k in token token-id expires-at name; do
	v=$(fc "$F_OUTPUT" "$k") && [ -n "$v" ] || fail "main: output $k missing"
done
token=$(fc "$F_OUTPUT" token)
token_id=$(fc "$F_OUTPUT" token-id)
expires_at=$(fc "$F_OUTPUT" expires-at)
token_name=$(fc "$F_OUTPUT" name)
[[ "$expires_at" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || fail "main: expires-at $expires_at is not RFC 3339 UTC, whole seconds"
grep -qxF -- "::add-mask::$token" "$work/main.stdout" || fail "main: no ::add-mask:: for the token on stdout"
mask_checks main "$token" "child token"
parent_checks main
[ "$(fc "$F_STATE" token-id)" = "$token_id" ] || fail "main: state token-id is not the output token-id"
! grep -qF -- "$token" "$F_STATE" || fail "main: the child token was written to the state file"
! grep -qF -- "$token" "$F_SUMMARY" || fail "main: the child token was written to the step summary"
mapfile -t state_keys < <(fc "$F_STATE" | sort -u)
post_state=()
for k in "${state_keys[@]}"; do post_state+=("STATE_$k=$(fc "$F_STATE" "$k")"); done
code=$(api GET "/user/tokens/$token_id" "$parent")
[ "$code" = 200 ] || fail "GET /user/tokens/$token_id with the parent: $code, want 200: $(cat "$work/api.body")"
code=$(api GET /user/tokens/verify "$token")
[ "$code" = 200 ] || fail "the child token does not verify: $code $(cat "$work/api.body")"
say "main: exit 0 in ${main_ms} ms; token $token_id ($token_name) expires $expires_at, masked first, verifies; state: ${state_keys[*]}"

# post, with the main phase's state
stage post "$post_entrypoint" "${post_state[@]}" "${main_env[@]}"
show post
[ "$rc" = 0 ] || fail "post exited $rc"
post_ms=$ms
mask_checks post "$token" "child token"
parent_checks post
code=$(api GET "/user/tokens/$token_id" "$parent")
[ "$code" = 404 ] || fail "after post, GET /user/tokens/$token_id: $code, want 404: $(cat "$work/api.body")"
say "post: exit 0 in ${post_ms} ms; GET /user/tokens/$token_id now answers 404"

# keyless: no api-token in the step; the job's OIDC token (from the host's local issuer, as a runner
# gives it to a job with "permissions: id-token: write") is traded at a broker on the host.
issuer=$(emu CF_EMULATOR_OIDC_ISSUER)
id_url=$(emu ACTIONS_ID_TOKEN_REQUEST_URL)
id_bearer=$(emu ACTIONS_ID_TOKEN_REQUEST_TOKEN)
[ -n "$issuer" ] && [ -n "$id_url" ] && [ -n "$id_bearer" ] || fail "the emulator printed no OIDC issuer or job variables"
cat >"$work/policy.yaml" <<POLICY
audience: https://cf-broker.container-test
issuers:
  github: $issuer
rules:
  - name: container-test
    issuer: github
    claims:
      repository_owner_id: "46576199"
      repository_id: "1104004353"
      ref: refs/heads/main
    grant:
      account-ids: [$account]
      scopes: [organizations:read]
      max-ttl: 1h
POLICY
CF_SCOPED_TOKEN_API_TOKEN=$parent "$bin" broker --policy "$work/policy.yaml" --listen 127.0.0.1:0 --api-url "$api_url" \
	>"$work/broker.audit" 2>"$work/broker.err" &
broker_pid=$!
wait_line "$work/broker.err" 'listening on http://' "$broker_pid" 200 || true # the check below says what failed
broker_url=$(grep -Eo 'listening on http://[0-9.:]+' "$work/broker.err" | head -1 | cut -d' ' -f3)
[ -n "$broker_url" ] || { cat "$work/broker.err" >&2; fail "the broker did not start"; }
say "broker at $broker_url (pid $broker_pid), issuer $issuer"
keyless_with=(broker-url="$broker_url" audience=https://cf-broker.container-test ttl=15m)
mapfile -d '' -t keyless_env < <(input_env "${keyless_with[@]}")
id_env=(ACTIONS_ID_TOKEN_REQUEST_URL="$id_url" ACTIONS_ID_TOKEN_REQUEST_TOKEN="$id_bearer")
stage kmain "$entrypoint" "${keyless_env[@]}" "${id_env[@]}"
show kmain
[ "$rc" = 0 ] || fail "keyless main exited $rc"
ktoken=$(fc "$F_OUTPUT" token) && ktoken_id=$(fc "$F_OUTPUT" token-id) || fail "keyless main: outputs missing"
mask_checks kmain "$ktoken" "keyless child token"
parent_checks kmain
grep -qxF -- "::add-mask::$id_bearer" "$work/kmain.stdout" || fail "keyless main: the job's id-token bearer was not masked"
! grep -qF -- "$parent" "$work/kmain.stdout" "$work/kmain.stderr" || fail "keyless main: the parent token reached the job"
grep -q '"event":"token.mint"' "$work/broker.audit" || fail "keyless main: the broker logged no mint"
code=$(api GET "/user/tokens/$ktoken_id" "$parent")
[ "$code" = 200 ] || fail "keyless: the broker's token $ktoken_id does not exist: $code"
mapfile -t kstate_keys < <(fc "$F_STATE" | sort -u)
kpost_state=()
for k in "${kstate_keys[@]}"; do kpost_state+=("STATE_$k=$(fc "$F_STATE" "$k")"); done
stage kpost "$post_entrypoint" "${kpost_state[@]}" "${keyless_env[@]}" "${id_env[@]}"
show kpost
[ "$rc" = 0 ] || fail "keyless post exited $rc"
mask_checks kpost "$ktoken" "keyless child token"
code=$(api GET "/user/tokens/$ktoken_id" "$parent")
[ "$code" = 404 ] || fail "after keyless post, GET /user/tokens/$ktoken_id: $code, want 404"
grep -q '"event":"token.revoke"' "$work/broker.audit" || fail "keyless post: the broker logged no revoke"
say "keyless: main got token $ktoken_id from the broker with no Cloudflare secret in the step; post had the broker delete it"

# bad input: one ::error:: naming the input, exit 1, no token made
code=$(api GET /user/tokens "$parent")
[ "$code" = 200 ] || fail "GET /user/tokens: $code"
token_ids() { { grep -o '"id" *: *"[^"]*"' "$work/api.body" || true; } | sort; }
before=$(token_ids)
mapfile -d '' -t bad_env < <(input_env "${with[@]}" ttl=5s)
stage bad "$entrypoint" "${bad_env[@]}"
show bad
[ "$rc" = 1 ] || fail "bad input (ttl: 5s) exited $rc, want 1"
errors=$(cat "$work/bad.stdout" "$work/bad.stderr" | grep -c '^::error' || true)
[ "$errors" = 1 ] || fail "bad input: $errors ::error lines, want 1"
cat "$work/bad.stdout" "$work/bad.stderr" | grep '^::error' | grep -q 'ttl' || fail "bad input: the ::error does not name ttl"
parent_checks bad
code=$(api GET /user/tokens "$parent")
[ "$before" = "$(token_ids)" ] || fail "bad input: the token list changed"
say "bad input (ttl: 5s): exit 1, one ::error:: naming ttl, no token made"

# post with no state: a notice, exit 0. Timed, with the phase's start-up on the host beside it.
runs=()
for _ in 1 2 3 4 5; do
	stage nostate "$post_entrypoint" "${main_env[@]}"
	[ "$rc" = 0 ] || { show nostate; fail "post without state exited $rc"; }
	runs+=("$ms")
done
grep -q '^::notice' "$work/nostate.stdout" "$work/nostate.stderr" || { show nostate; fail "post without state: no ::notice"; }
container_ms=$(printf '%s\n' "${runs[@]}" | median)
host=()
for _ in $(seq 21); do
	t=$(date +%s%N)
	env -i "INPUT_API-TOKEN=$parent" "INPUT_ACCOUNT-IDS=$account" "GITHUB_OUTPUT=$work/h.out" "GITHUB_STATE=$work/h.state" \
		"GITHUB_ENV=$work/h.env" "GITHUB_STEP_SUMMARY=$work/h.sum" "$work/image-fs/usr/local/bin/cf-scoped-token-post" action >/dev/null 2>&1 ||
		fail "host post without state failed"
	host+=("$(($(date +%s%N) - t))")
done
host_us=$(printf '%s\n' "${host[@]}" | median)
host_us=$((host_us / 1000))

binsize=$(stat -c %s "$work/image-fs/usr/local/bin/cf-scoped-token")
printf '\ncontainer: measured on %s, %s cores, %s\n' "$(uname -m)" "$(nproc)" "$(podman --version)"
printf 'container:   image size (podman image inspect .Size)        %s bytes (%s MB)\n' "$size" "$(awk -v s="$size" 'BEGIN {printf "%.1f", s / 1e6}')"
printf 'container:   the binary in it                              %s bytes\n' "$binsize"
printf 'container:   build --no-cache (downloads modules)          %s ms\n' "$build_cold_ms"
printf 'container:   rebuild after a source change (warm modules)  %s ms\n' "$build_warm_ms"
printf 'container:   main phase, docker-run to exit (emulator API) %s ms\n' "$main_ms"
printf 'container:   post phase, docker-run to exit (one DELETE)   %s ms\n' "$post_ms"
printf 'container:   post without state, podman run to exit        %s ms (median of 5)\n' "$container_ms"
printf 'container:   post without state, process start to exit     %s us (the image binary run on the host, median of 21)\n' "$host_us"
say "PASS"
