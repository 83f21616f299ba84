#!/usr/bin/env bash
# Runs the whole test suite (what scripts/test.sh runs) with the real clock moved to a
# chosen instant, to show that no test depends on today's date, weekday or hour. Not
# part of CI. Needs Debian's `faketime` package and the tools scripts/setup installs.
#
#   scripts/faketime-suite.sh 'WHEN' [ZONE]      ZONE defaults to America/Bogota
#   scripts/faketime-suite.sh '2026-11-30 00:30'   # a Monday, 00:30 in Bogota
#   scripts/faketime-suite.sh '2026-11-29 23:50'   # a Sunday, 23:50: midnight mid-run
#
# How: cargo builds the test binaries on the real clock (cargo under libfaketime would
# misjudge what is fresh), then each binary runs directly, as `cargo test` would run it,
# with libfaketime preloaded. The clock is shifted by a fixed offset (FAKETIME="-Ns")
# rather than started at WHEN ("@WHEN"), which libfaketime restarts in every new
# process: with an offset the test binary and the exporter binaries it starts see one
# and the same time, starting at WHEN and running on. Monotonic clocks stay real
# (FAKETIME_DONT_FAKE_MONOTONIC=1): tokio's timers and every deadline run in real time.
# Go programs (prometheus, promtool, amtool) read the time without libc and keep the
# real clock: expositions carry no timestamps, so the tests do not mind, except the
# one below that compares Prometheus' time() with the exporter's clock. cargo and
# rustc (a test replays the Dockerfile's cargo step) deadlock at start under
# libfaketime (their allocator's start-up), so they run through shims on the real
# clock.
set -euo pipefail
cd "$(dirname "$0")/.."

when=${1:?usage: $0 'YYYY-MM-DD HH:MM[:SS]' [ZONE]}
zone=${2:-America/Bogota}
lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
if [ ! -e "$lib" ]; then
  echo "libfaketime is missing: apt-get install faketime" >&2
  exit 1
fi

echo "==> building the test binaries (real clock)"
build_log=$(mktemp)
run_log=$(mktemp)
trap 'rm -f "$build_log" "$run_log"' EXIT
cargo test --locked --no-run --workspace --lib --bins --tests 2>&1 | tee "$build_log"
mapfile -t binaries < <(sed -n 's/^ *Executable .*(\(target\/[^)]*\))$/\1/p' "$build_log")
if [ "${#binaries[@]}" -eq 0 ]; then
  echo "no test binary found in cargo's output" >&2
  exit 1
fi

# Reads Prometheus' time() (the real clock) against the exporter's (faked) timestamps:
# it cannot pass with only one of the two clocks moved. It runs in scripts/test.sh.
skip=(--skip every_dashboard_query_and_rule_works_against_a_real_prometheus)

shims=$(mktemp -d)
trap 'rm -f "$build_log" "$run_log"; rm -rf "$shims"' EXIT
for tool in cargo rustc rustup; do
  real=$(command -v "$tool") || continue
  printf '#!/bin/sh\nunset LD_PRELOAD FAKETIME\nexec %q "$@"\n' "$real" >"$shims/$tool"
  chmod +x "$shims/$tool"
done

target=$(TZ="$zone" date -d "$when" +%s)
offset=$((target - $(date +%s)))
fake=(env PATH="$shims:$PATH" LD_PRELOAD="$lib" FAKETIME="$(printf '%+ds' "$offset")"
  FAKETIME_DONT_FAKE_MONOTONIC=1)
echo "==> the faked clock starts at: $("${fake[@]}" env TZ="$zone" date '+%A %F %T %Z') ($("${fake[@]}" date -u '+%F %T UTC'))"

status=0
for bin in "${binaries[@]}"; do
  echo "==> $bin"
  "${fake[@]}" "$bin" --test-threads=2 "${skip[@]}" 2>&1 | tee -a "$run_log" || status=1
done
echo "==> the faked clock ends at: $("${fake[@]}" env TZ="$zone" date '+%A %F %T %Z')"

# The same closing line as scripts/test.sh.
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i) ~ /^passed;?$/) p += $(i-1)
         if ($(i) ~ /^failed;?$/) f += $(i-1)
         if ($(i) ~ /^ignored;?$/) s += $(i-1)
       }
     }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$run_log"
exit "$status"
