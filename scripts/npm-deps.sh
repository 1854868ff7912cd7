#!/usr/bin/env bash
# Installs Node 22 and the official MCP packages the tests use into
# .cache/npm (the machine's own Node may be older). Prints nothing on success.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${WARDEN_CACHE:-$root/.cache}/npm"
want="node@22 @modelcontextprotocol/conformance@0.2.0-alpha.12 @modelcontextprotocol/server-postgres@0.6.2 playwright-core@1.65.1"
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ]; then
	exit 0
fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"warden-test-deps","private":true}' >"$dir/package.json"
# shellcheck disable=SC2086
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error $want >"$dir/install.log" 2>&1 || {
	cat "$dir/install.log" >&2
	exit 1
}
echo "$want" >"$dir/.installed"
