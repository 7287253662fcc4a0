#!/usr/bin/env bash
# What the tests need from the system, beyond what make installs itself (the venv, node_modules).
# `make test` runs this first. When something is missing: as root, installs it from Debian;
# otherwise says in one line what to install and exits 1, before any test runs.
set -euo pipefail

# One entry per need: a command the tests run (or a file they read: an absolute path), and the
# Debian package that brings it.
requirements=(
  "chromium chromium"         # the browser tests drive it (playwright-core downloads none)
  "redis-server redis-server" # the URL cache tests stop and restart a private one
  "/usr/sbin/pgbouncer pgbouncer" # tests/test_pooler.py: the service behind a real pooler
  "psql postgresql-client"    # ... whose console it reads (SHOW SERVERS)
  # tests/test_read_replica.py: a primary and its streaming replica of their own (initdb,
  # pg_basebackup; devtools/photovault_dev/replica.py takes the newest version there is)
  "/usr/lib/postgresql/15/bin/initdb postgresql-15"
  # The Go and C++ clients (scripts/gen_clients.sh; tests/test_go_client.py, test_cpp_client.py)
  "protoc protobuf-compiler"
  "protoc-gen-go protoc-gen-go"
  "protoc-gen-go-grpc protoc-gen-go-grpc"
  "go golang-go"
  "/usr/share/gocode/src/google.golang.org/grpc golang-google-grpc-dev"
  "/usr/share/gocode/src/google.golang.org/protobuf golang-google-protobuf-dev"
  "/usr/share/gocode/src/google.golang.org/genproto/googleapis/rpc/errdetails golang-google-genproto-dev"
  # grpc-go needs golang/protobuf 1.4+ (APIv2) for protoc-gen-go 1.28's messages; 1.3 panics
  "/usr/share/gocode/src/github.com/golang/protobuf/proto/registry.go golang-github-golang-protobuf-1-5-dev"
  "grpc_cpp_plugin protobuf-compiler-grpc"
  "g++ g++"
  "make make"
  "pkg-config pkg-config"
  "/usr/include/grpcpp/grpcpp.h libgrpc++-dev"
  "/usr/include/google/protobuf/message.h libprotobuf-dev"
  "curl-config libcurl4-openssl-dev"
  # `make bench` and `make soak`: the load from a C client in its own process (bench/workers.py)
  "h2load nghttp2-client"
)

# Whether a need is met: an absolute path exists, or a command is on PATH.
present() {
  if [[ $1 == /* ]]; then [[ -e $1 ]]; else command -v "$1" >/dev/null; fi
}

# The packages of the needs not met, each once, space-separated.
missing_packages() {
  local entry need package missing=" "
  for entry in "${requirements[@]}"; do
    read -r need package <<<"$entry"
    if ! present "$need" && [[ $missing != *" $package "* ]]; then
      missing+="$package "
    fi
  done
  echo $missing
}

missing=$(missing_packages)
[[ -z $missing ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "installing what the tests need: $missing"
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  missing=$(missing_packages)
  [[ -z $missing ]] && exit 0
fi
echo "make test needs these Debian packages: $missing (as root: apt-get install $missing)" >&2
exit 1
