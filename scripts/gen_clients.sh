#!/usr/bin/env bash
# Generates the Go and C++ clients from protos/ with Debian's protoc and plugins (no downloads).
# DO NOT EDIT the output. Usage: scripts/gen_clients.sh [OUT_DIR]   (default gen: gen/go, gen/cpp)
#   Go:  protoc-gen-go + protoc-gen-go-grpc → OUT/go/photovault/v1 (package photovaultv1 of
#        github.com/photovault/photovault/gen/go/photovault/v1)
#   C++: protoc's cpp + grpc_cpp_plugin → OUT/cpp, with google/rpc status and error details
#        (third_party/googleapis) to read an error's ErrorInfo
# The output is not committed: generated C++ compiles only against the libprotobuf of the protoc
# that wrote it, so each machine generates with its own toolchain (tests do it per session).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gen}

for tool in protoc protoc-gen-go protoc-gen-go-grpc grpc_cpp_plugin; do
  command -v "$tool" >/dev/null || {
    echo "$tool not found: run scripts/test-prerequisites.sh as root (Debian packages)" >&2
    exit 1
  }
done

go_module=github.com/photovault/photovault/gen/go
protos=(photovault/v1/account.proto photovault/v1/album.proto photovault/v1/photo.proto photovault/v1/photo_service.proto)
# The protos declare no go_package (they stay language-neutral): map each file here instead.
go_opts=("--go_opt=module=$go_module" "--go-grpc_opt=module=$go_module")
for proto in "${protos[@]}"; do
  mapping="M$proto=$go_module/photovault/v1;photovaultv1"
  go_opts+=("--go_opt=$mapping" "--go-grpc_opt=$mapping")
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/go" "$tmp/cpp"
protoc -I protos --go_out="$tmp/go" --go-grpc_out="$tmp/go" "${go_opts[@]}" "${protos[@]}"
protoc -I protos --cpp_out="$tmp/cpp" --grpc_out="$tmp/cpp" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" "${protos[@]}"
protoc -I third_party/googleapis --cpp_out="$tmp/cpp" \
  google/rpc/status.proto google/rpc/error_details.proto

# Replace the trees only once generation has succeeded.
mkdir -p "$out"
rm -rf "$out/go" "$out/cpp"
mv "$tmp/go" "$tmp/cpp" "$out/"
