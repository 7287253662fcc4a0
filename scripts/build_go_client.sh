#!/usr/bin/env bash
# Builds the Go flow program (tests/go/flow) against the code scripts/gen_clients.sh generated,
# offline, with Debian's Go packages only: GOPATH mode over /usr/share/gocode (the packaged
# google.golang.org/grpc, protobuf and genproto), as Debian builds its own Go packages; no module
# proxy, no downloads.
# Usage: scripts/build_go_client.sh GEN_DIR OUT_BINARY   (GEN_DIR as given to gen_clients.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
gen=$(realpath "$1")
out=$2
command -v go >/dev/null || {
  echo "go not found: run scripts/test-prerequisites.sh as root (Debian packages)" >&2
  exit 1
}
# The generated package at its import path, inside a GOPATH of its own (Go's build cache keeps
# the compiled packages between builds).
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
package_dir="$gopath/src/github.com/photovault/photovault/gen"
mkdir -p "$package_dir"
ln -s "$gen/go" "$package_dir/go"
GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath:/usr/share/gocode" \
  go build -o "$out" ./tests/go/flow/main.go
