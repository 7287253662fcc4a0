#!/usr/bin/env bash
# What the tests need from the system, beyond what make installs itself (the venv, node_modules).
# `make test` runs this first. When something is missing: as root, installs it from Debian;
# otherwise says in one line what to install and exits 1, before any test runs.
set -euo pipefail

# One entry per need: a command the tests run, and the Debian package that brings it.
requirements=(
  "chromium chromium"         # the browser tests drive it (playwright-core downloads none)
  "redis-server redis-server" # the URL cache tests stop and restart a private one
)

# The packages of the commands not on PATH, each once, space-separated.
missing_packages() {
  local entry command package missing=" "
  for entry in "${requirements[@]}"; do
    read -r command package <<<"$entry"
    if ! command -v "$command" >/dev/null && [[ $missing != *" $package "* ]]; then
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
