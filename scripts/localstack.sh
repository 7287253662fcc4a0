#!/usr/bin/env bash
# LocalStack S3 without Docker, for the signature-enforcing test tier.
# Usage:
#   scripts/localstack.sh install       # only create/refresh .venv-localstack
#   scripts/localstack.sh start PORT    # install if needed, then exec LocalStack (S3 only)
#                                       # on 127.0.0.1:PORT in the foreground
# Env: LOCALSTACK_PYTHON (default python3) builds the venv; LOCALSTACK_DATA_DIR overrides
# LocalStack's filesystem root (default .dev/localstack/PORT, wiped at each start).
# Signature validation is switched ON here (LocalStack's default is off); see docs/s3-endpoints.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv-localstack
# Pins known to work on Python 3.11; bump together (the stamp below re-installs on change).
reqs=(
  "localstack-core[runtime]==4.13.1"
  "cbor2<6"
  "pyopenssl<25"
  "cryptography<45"
  "service_identity"
)
stamp=$venv/.photovault-reqs

install() {
  local want
  want=$(printf '%s\n' "${reqs[@]}")
  if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  echo "localstack.sh: installing into $venv" >&2
  "${LOCALSTACK_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" >&2
  printf '%s\n' "$want" > "$stamp"
}

cmd=${1:-}
case $cmd in
  install)
    install
    ;;
  start)
    port=${2:?usage: scripts/localstack.sh start PORT}
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
      echo "localstack.sh: bad port: $port" >&2
      exit 2
    fi
    install
    # LocalStack's filesystem root (tmp/, state/, cache/): under .dev/ (gitignored), one dir per
    # port, wiped on each start; a caller that sets LOCALSTACK_DATA_DIR owns (and cleans) that
    # dir instead. Bucket/object state itself is in memory and dies with the process; LocalStack
    # 4.13 hard-codes /tmp/localstack-s3-storage/<bucket> for spooled object files, which no env
    # var moves (it leaves empty per-bucket dirs behind).
    data=${LOCALSTACK_DATA_DIR:-$root/.dev/localstack/$port}
    if [[ -z ${LOCALSTACK_DATA_DIR:-} ]]; then rm -rf "$data"; fi
    mkdir -p "$data"
    # Runtime entry point (what the deprecated `localstack start --host` ends up calling), run
    # directly: no Docker, no CLI banner/analytics, and exec so the caller owns the process.
    # S3_SKIP_SIGNATURE_VALIDATION defaults to 1 (!): without =0 LocalStack only logs bad or
    # expired presigned URLs and serves them anyway. DNS_ADDRESS=0 disables its DNS server;
    # DISABLE_EVENTS/SKIP_SSL_CERT_DOWNLOAD stop it phoning home. EAGER_SERVICE_LOADING
    # makes /_localstack/health say "running" only once S3 is really up.
    exec env \
      SERVICES=s3 \
      EAGER_SERVICE_LOADING=1 \
      S3_SKIP_SIGNATURE_VALIDATION=0 \
      DNS_ADDRESS=0 \
      GATEWAY_SERVER=hypercorn \
      GATEWAY_LISTEN="127.0.0.1:$port" \
      LOCALSTACK_HOST="127.0.0.1:$port" \
      FILESYSTEM_ROOT="$data" \
      PERSISTENCE=0 \
      DISABLE_EVENTS=1 \
      SKIP_SSL_CERT_DOWNLOAD=1 \
      LOCALSTACK_CLI=0 \
      "$venv/bin/python" -m localstack.runtime.main
    ;;
  *)
    echo "usage: scripts/localstack.sh install | start PORT" >&2
    exit 2
    ;;
esac
