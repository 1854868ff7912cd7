#!/usr/bin/env bash
# Runs every check Warden's CI runs: formatting, vet, staticcheck, the Go
# tests with the race detector, and the conformance comparison. On a fresh
# machine it first installs what the tests need (scripts/setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup.sh

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
sc=$(command -v staticcheck || echo "$(go env GOPATH)/bin/staticcheck")
if [ -x "$sc" ]; then "$sc" ./...; else echo "staticcheck not installed (scripts/setup.sh installs it)" >&2; exit 1; fi

go test -race -count=1 ./...
scripts/conformance.sh
