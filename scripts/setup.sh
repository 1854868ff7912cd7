#!/usr/bin/env bash
# Installs what Warden's tests need on a fresh Debian machine: PostgreSQL 15
# (database tests), Chromium (the console test), Go modules, staticcheck, and
# Node 22 with the official MCP packages (conformance and interop tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "setup: missing Debian packages: ${need[*]} (run as root to install them)" >&2
	fi
fi

go mod download
command -v staticcheck >/dev/null || [ -x "$(go env GOPATH)/bin/staticcheck" ] ||
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

scripts/npm-deps.sh
