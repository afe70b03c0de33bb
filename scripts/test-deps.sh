#!/bin/sh
# System packages the test suite needs besides Python, installed with apt-get
# when missing (nothing is done when they are already on PATH):
#   redis-tools                 redis-cli and redis-benchmark, the real Redis
#                               clients the server tests talk to;
#   redis-server                the reference: tests send the same requests to
#                               it and to snapkv and compare the replies, and
#                               exchange DUMP payloads with it;
#   prometheus-redis-exporter   Prometheus's redis_exporter, which the INFO
#                               tests point at a real snapkv serve.
# apt-get needs root: run as root, or with sudo available.
set -eu

packages=""
if ! command -v redis-cli >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
    packages="redis-tools"
fi
if ! command -v redis-server >/dev/null 2>&1; then
    packages="$packages redis-server"
fi
if ! command -v prometheus-redis-exporter >/dev/null 2>&1; then
    packages="$packages prometheus-redis-exporter"
fi
if [ -z "$packages" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test-deps.sh: install these Debian/Ubuntu packages' programs:$packages" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    run=""
elif command -v sudo >/dev/null 2>&1; then
    run="sudo"
else
    echo "scripts/test-deps.sh: apt-get needs root (or sudo) to install:$packages" >&2
    exit 1
fi
echo "scripts/test-deps.sh: installing$packages with apt-get (needs root: ${run:-running as root})" >&2
export DEBIAN_FRONTEND=noninteractive
echo "scripts/test-deps.sh: apt-get update" >&2
$run apt-get update -q >/dev/null
echo "scripts/test-deps.sh: apt-get install$packages" >&2
# shellcheck disable=SC2086 # the package list is meant to split
$run apt-get install -y -q --no-install-recommends $packages >/dev/null
command -v redis-cli >/dev/null
command -v redis-server >/dev/null
command -v prometheus-redis-exporter >/dev/null
echo "scripts/test-deps.sh: installed$packages" >&2
