#!/usr/bin/env bash
# Regenerates bench/RESULTS.md: runs every stage's micro-benchmark and the
# end-to-end relay benchmark, and records them with the machine they ran on.
# Run it on a quiet machine: other load inflates every figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=bench/RESULTS.md
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

run() { # title, package, bench regexp, extra flags...
	local title=$1 pkg=$2 re=$3
	shift 3
	echo "### $title" >>"$tmp"
	echo >>"$tmp"
	echo '```' >>"$tmp"
	echo "\$ go test $pkg -run '^\$' -bench '$re' $*" >>"$tmp"
	go test "$pkg" -run '^$' -bench "$re" "$@" 2>&1 | grep -E '^(Benchmark|ok|FAIL)' >>"$tmp"
	echo '```' >>"$tmp"
	echo >>"$tmp"
}

run "Relay: a small tools/call, direct vs through Warden (process CPU per call includes client, gateway and upstream)" ./bench 'BenchmarkCall' -benchtime 2000x
run "Memory per open client session (client, Warden and upstream in one process: an upper bound)" ./bench 'BenchmarkMemoryPerSession' -benchtime 1x
run "Warden's pipeline between the transports (check, identify, route, validate, decide, respond)" ./internal/gateway 'BenchmarkPipeline' -benchtime 20000x
run "Strict message check (every client message)" ./internal/wire 'BenchmarkCheck' -benchtime 20000x
run "Argument decode, validate, re-encode" ./internal/argschema 'Benchmark' -benchtime 20000x
run "Policy decision with 100 rules" ./internal/policy 'BenchmarkDecide' -benchtime 200000x
run "Audit appends, durable (fsync): group commit, one at a time, and the disk's own flush" ./internal/audit 'BenchmarkAppendParallel|BenchmarkAppendSerial|BenchmarkDiskFlush' -benchtime 3s
run "SQL classification" ./internal/classify/sqlclass 'BenchmarkClassify' -benchtime 2000x
run "Database: a query through the connector and Warden vs the connector alone vs pgx" ./test/postgres 'Benchmark' -benchtime 200x
run "Masking realistic JSON results" ./internal/mask 'BenchmarkMaskCallToolResult' -benchtime 1s
run "Per-call credential: mint and verify" ./internal/credential 'BenchmarkMint' -benchtime 3000x

# The load test runs the warden binary itself: it starts the upstream and the
# gateway as their own processes to measure the gateway's CPU and memory.
bin=$(mktemp -d)
trap 'rm -f "$tmp"; rm -rf "$bin"' EXIT
go build -o "$bin/warden" ./cmd/warden
"$bin/warden" bench --report bench/RESULTS-load.md --plot bench/latency.svg

{
	echo "# Benchmark results"
	echo
	echo "Regenerate with \`bench/run.sh\`. Recorded $(date -u +%Y-%m-%d) on:"
	echo
	echo '```'
	echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	go version
	echo '```'
	echo
	cat bench/NOTES.md
	echo
	cat "$tmp"
	echo "## Load: direct vs through Warden"
	echo
	echo "From \`warden bench\` (bench/RESULTS-load.md); the plot is [bench/latency.svg](latency.svg)."
	echo
	# The load report's own title is replaced by the section heading above.
	sed '1{/^# /d}' bench/RESULTS-load.md | sed 's/^## /### /'
} >"$out"
echo "wrote $out"
