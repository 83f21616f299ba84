#!/usr/bin/env bash
# Installs the real `prometheus` and `promtool` binaries the rule and live tests run
# against. Idempotent: does nothing when both are already on PATH.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "10-prometheus: prometheus and promtool already installed ($(command -v prometheus))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "10-prometheus: prometheus/promtool missing and apt-get is not available;" >&2
    echo "  install Prometheus (https://prometheus.io/download/) so that both" >&2
    echo "  'prometheus' and 'promtool' are on PATH, then rerun." >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "10-prometheus: not root and sudo is not available; cannot install prometheus" >&2
        exit 1
    fi
fi

echo "10-prometheus: installing prometheus (provides promtool) with apt-get"
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update; then
    echo "10-prometheus: apt-get update failed" >&2
    exit 1
fi
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; then
    echo "10-prometheus: apt-get install prometheus failed" >&2
    exit 1
fi

# The Debian package starts a system service; the tests run their own instances.
for missing in prometheus promtool; do
    if ! command -v "$missing" >/dev/null 2>&1; then
        echo "10-prometheus: '$missing' still not on PATH after installation" >&2
        exit 1
    fi
done
echo "10-prometheus: installed $(prometheus --version 2>&1 | head -n1)"
