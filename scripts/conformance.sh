#!/usr/bin/env bash
# Runs the official MCP conformance suite against the Go SDK's conformance
# server twice, directly and through Warden, and compares the results.
#
#   scripts/conformance.sh            # both modes
#   MODES=stateless scripts/conformance.sh
#
# Prints one line per mode:
#   conformance <mode>: direct=<checks passed> warden=<checks passed> missing=<scenarios>
# and exits non-zero when a scenario that passes directly fails through Warden.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${WARDEN_CACHE:-$root/.cache}"
modes="${MODES:-stateful stateless stateful+policy stateless+policy}"
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# Node 22 and the suite, installed once into the cache.
"$root/scripts/npm-deps.sh"
npmdir="$cache/npm"
export PATH="$npmdir/node_modules/.bin:$PATH"

cd "$root"
go build -o "$work/warden" ./cmd/warden
go build -o "$work/everything-server" github.com/modelcontextprotocol/go-sdk/conformance/everything-server

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_port() {
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# run_suite URL OUT ARGS... — runs the suite, leaves its output in OUT.
run_suite() {
	local url=$1 out=$2
	shift 2
	conformance server --url "$url" "$@" >"$out" 2>&1 || true
}

# passed_checks FILE — the suite's total of passed checks.
passed_checks() { sed -n 's/^Total: \([0-9]*\) passed.*/\1/p' "$1" | tail -1; }

# passing_scenarios FILE — scenarios with no failed check, one a line.
passing_scenarios() { sed -n 's/^✓ \([^:]*\): [0-9]* passed, 0 failed.*/\1/p' "$1" | sort; }

status=0
for mode in $modes; do
	# A "+policy" mode runs Warden with a policy that allows the suite's
	# tools, a caller identity, and the audit log on; afterwards the audit
	# chain must verify.
	policy=""
	case $mode in
	stateful | stateful+policy) server_flags=(-stateless=false); suite_flags=() ;;
	stateless | stateless+policy) server_flags=(); suite_flags=(--suite all --spec-version 2026-07-28) ;;
	*) echo "unknown mode $mode" >&2; exit 2 ;;
	esac
	case $mode in *+policy) policy="policy: $root/test/conformance/policy.yaml" ;; esac
	# Each run gets a fresh server: some scenarios change its state.
	dport=$(free_port)
	"$work/everything-server" -http "127.0.0.1:$dport" "${server_flags[@]}" >"$work/server-direct-$mode.log" 2>&1 &
	pids+=($!)
	sport=$(free_port)
	"$work/everything-server" -http "127.0.0.1:$sport" "${server_flags[@]}" >"$work/server-warden-$mode.log" 2>&1 &
	pids+=($!)
	wait_port "$dport"
	wait_port "$sport"

	wport=$(free_port)
	cat >"$work/warden-$mode.yaml" <<YAML
version: 1
listen: 127.0.0.1:$wport
state_key_file: $work/state.key
store: $work/warden-$mode.db
$policy
identity:
  anonymous: {id: conformance-suite, roles: [conformance]}
upstreams:
  everything:
    url: http://127.0.0.1:$sport/mcp
    unprefixed: true
    allow_tools: ["*"]
YAML
	"$work/warden" serve --config "$work/warden-$mode.yaml" >"$work/warden-$mode.log" 2>&1 &
	pids+=($!)
	wait_port "$wport"

	run_suite "http://127.0.0.1:$dport/mcp" "$work/direct-$mode.txt" "${suite_flags[@]}"
	run_suite "http://127.0.0.1:$wport/mcp" "$work/warden-$mode.txt" "${suite_flags[@]}"

	missing=$(comm -23 <(passing_scenarios "$work/direct-$mode.txt") <(passing_scenarios "$work/warden-$mode.txt") | paste -sd, -)
	if [ -n "${CONFORMANCE_OUT:-}" ]; then
		mkdir -p "$CONFORMANCE_OUT"
		cp "$work/direct-$mode.txt" "$work/warden-$mode.txt" "$work/warden-$mode.log" "$CONFORMANCE_OUT/"
	fi
	if [ -n "$policy" ]; then
		kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null || true
		if ! "$work/warden" audit verify --db "$work/warden-$mode.db" >"$work/verify-$mode.txt" 2>&1; then
			echo "audit verify failed after mode $mode:" >&2
			cat "$work/verify-$mode.txt" >&2
			status=1
		fi
	fi
	direct=$(passed_checks "$work/direct-$mode.txt")
	through=$(passed_checks "$work/warden-$mode.txt")
	echo "conformance $mode: direct=${direct:-0} warden=${through:-0} missing=${missing:-none}"
	if [ -n "$missing" ] || [ -z "$direct" ] || [ "${direct:-0}" -eq 0 ]; then
		status=1
		grep -v '^✓' "$work/warden-$mode.txt" | head -60 >&2 || true
	fi
done
exit $status
