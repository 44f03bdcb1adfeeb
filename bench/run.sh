#!/usr/bin/env bash
# run.sh — runs bench/'s benchmarks and its full scale run, and writes the results into
# bench/README.md between its marker comments, with the machine and the date.
#
#   bash bench/run.sh              benchmarks (about a minute on 2 cores), then the scale run
#                                  (300 jobs: several minutes)
#   bash bench/run.sh --no-scale   benchmarks only; the README's scale section is left as it is
#   bash bench/run.sh --scale-only the scale run only
#
# Environment: RUNS (runs per latency, default 30); SCALE_JOBS (300), SCALE_LIMIT (120) and
# SCALE_WINDOW (30s), the rate limit of the parent token.
#
# baseline.sh needs curl and jq; as root on Debian they are installed when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
readme=bench/README.md
runs=${RUNS:-30}
scale_jobs=${SCALE_JOBS:-300}
scale_limit=${SCALE_LIMIT:-120}
scale_window=${SCALE_WINDOW:-30s}
do_bench=1 do_scale=1
case ${1:-} in
'') ;;
--no-scale) do_scale=0 ;;
--scale-only) do_bench=0 ;;
*)
	echo "usage: bash bench/run.sh [--no-scale | --scale-only]" >&2
	exit 2
	;;
esac

if [[ -d /usr/local/go/bin ]]; then
	PATH=/usr/local/go/bin:$PATH
fi
if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		apt-get update -qq && apt-get install -y -qq curl jq >/dev/null
	else
		echo "run.sh: baseline.sh needs curl and jq (Debian: apt-get install -y curl jq)" >&2
		exit 1
	fi
fi
for marker in job scale; do
	if ! grep -q "^<!-- bench:$marker:begin -->$" "$readme" || ! grep -q "^<!-- bench:$marker:end -->$" "$readme"; then
		echo "run.sh: $readme lacks the bench:$marker markers" >&2
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

machine() {
	local cpu
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
	printf '%s, %s CPUs (%s), %s; %s, %s; %s\n' "$(uname -m)" "$(nproc)" "${cpu:-unknown CPU}" \
		"$(go version | cut -d' ' -f3-)" "$(curl --version | head -n 1 | cut -d' ' -f1-2)" "$(jq --version)" \
		"$(date -u +'%Y-%m-%d %H:%M UTC')"
}

# replace NAME FILE: put FILE's contents between the bench:NAME markers of the README.
replace() {
	awk -v begin="<!-- bench:$1:begin -->" -v end="<!-- bench:$1:end -->" -v content="$2" '
		$0 == begin { print; while ((getline line < content) > 0) print line; skip = 1; next }
		$0 == end { skip = 0 }
		!skip { print }
	' "$readme" >"$tmp/readme" && cat "$tmp/readme" >"$readme"
}

status=0
if ((do_bench)); then
	echo "run.sh: benchmarks, $runs runs per latency" >&2
	if go test -count=1 -run '^$' -bench '^BenchmarkJob$' -benchtime="${runs}x" -timeout 20m ./bench \
		-args -report "$tmp/job.md" | tee "$tmp/bench.txt"; then
		{
			printf '\nMeasured on %s.\n\n' "$(machine)"
			cat "$tmp/job.md"
			printf '\n'
		} >"$tmp/job-section"
		replace job "$tmp/job-section"
	else
		echo "run.sh: the benchmarks failed; the README's results are unchanged" >&2
		status=1
	fi
fi
if ((do_scale)); then
	echo "run.sh: scale run, $scale_jobs jobs at $scale_limit requests per $scale_window" >&2
	verdict="TestScale passed: every failed step named the rate limit, no orphans, no secret printed."
	scale_failed=0
	if ! go test -count=1 -run '^TestScale$' -v -timeout 30m ./bench \
		-args -scale.jobs="$scale_jobs" -scale.limit="$scale_limit" -scale.window="$scale_window" \
		-scale.report "$tmp/scale.md" >"$tmp/scale.txt" 2>&1; then
		verdict="**TestScale failed** (its assertions are listed below the tables)."
		scale_failed=1
		status=1
	fi
	tail -n 5 "$tmp/scale.txt" >&2
	if [[ -s $tmp/scale.md ]]; then
		{
			printf '\nMeasured on %s.\n\n' "$(machine)"
			cat "$tmp/scale.md"
			printf '\n%s\n' "$verdict"
			if ((scale_failed)); then
				printf '\n```\n'
				grep -E '^\s+scale_test\.go:[0-9]+: (job [0-9]+: |(main|post): |[0-9]+ child tokens|no job succeeded)' "$tmp/scale.txt" |
					sed -E 's/^\s+//' | head -n 20 || true
				printf '```\n'
			fi
			printf '\n'
		} >"$tmp/scale-section"
		replace scale "$tmp/scale-section"
	else
		echo "run.sh: the scale run wrote no report; the README's results are unchanged" >&2
		cat "$tmp/scale.txt" >&2
		status=1
	fi
fi
exit "$status"
