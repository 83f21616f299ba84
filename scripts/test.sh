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

# A clean clone builds everything once: incremental caches would only cost time there.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi

echo "==> cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Integration tests start servers and Prometheus instances and mostly wait on them:
# three at a time keep 2 cores busy without starving the timed ones.
status=0
cargo test --locked --no-fail-fast --workspace --lib --bins --tests "$@" -- --test-threads=3 2>&1 | tee "$log" || status=$?

# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i) ~ /^passed;?$/) p += $(i-1)
         if ($(i) ~ /^failed;?$/) f += $(i-1)
         if ($(i) ~ /^ignored;?$/) s += $(i-1)
       }
     }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
