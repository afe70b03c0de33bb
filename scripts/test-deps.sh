#!/bin/sh
# System packages the test suite needs besides Python: redis-cli and
# redis-benchmark (Debian's redis-tools), the real Redis clients the server
# tests talk to. Installs them with apt-get when they are missing; does
# nothing when they are already on PATH.
set -eu

if command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test-deps.sh: install redis-cli and redis-benchmark (Debian/Ubuntu: redis-tools)" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    run=""
elif command -v sudo >/dev/null 2>&1; then
    run="sudo"
else
    echo "scripts/test-deps.sh: need root (or sudo) to apt-get install redis-tools" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$run apt-get update -q >/dev/null
$run apt-get install -y -q --no-install-recommends redis-tools >/dev/null
command -v redis-cli >/dev/null
