#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with only the Rust toolchain:
# installs what the tests need (scripts/setup/*.sh: prometheus/promtool, deploy
# linters), then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

for step in scripts/setup/*.sh; do
  echo "==> $step"
  bash "$step"
done

echo "==> cargo test"
# Integration tests start servers and Prometheus instances; two at a time fit 2 cores.
exec cargo test --locked "$@" -- --test-threads=2
