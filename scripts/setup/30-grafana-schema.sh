#!/usr/bin/env bash
# Installs what tests/dashboards.rs type-checks the dashboards with
# (scripts/check-dashboard-types.mjs): Grafana's published types, npm @grafana/schema
# (pinned to a Grafana 12 release), and the TypeScript compiler, into a prefix of their
# own. Idempotent: installs only when missing or at another version.
set -euo pipefail

GRAFANA_SCHEMA_VERSION=12.4.11
TYPESCRIPT_VERSION=5.9.3
# tests/dashboards.rs and the check script look here (override: WOLKVOX_GRAFANA_SCHEMA_PREFIX).
PREFIX=${WOLKVOX_GRAFANA_SCHEMA_PREFIX:-/opt/wolkvox-grafana-schema}

log() { printf '30-grafana-schema: %s\n' "$*"; }

installed() { # package version
  local manifest="$PREFIX/node_modules/$1/package.json"
  [ -f "$manifest" ] && grep -q "\"version\": \"$2\"" "$manifest"
}

if ! command -v npm >/dev/null 2>&1; then
  log "npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

if ! installed @grafana/schema "$GRAFANA_SCHEMA_VERSION" || ! installed typescript "$TYPESCRIPT_VERSION"; then
  log "npm install @grafana/schema@$GRAFANA_SCHEMA_VERSION typescript@$TYPESCRIPT_VERSION into $PREFIX"
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-fund --no-audit --loglevel=error --no-save \
    "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION"
fi

for pkg in "@grafana/schema $GRAFANA_SCHEMA_VERSION" "typescript $TYPESCRIPT_VERSION"; do
  # shellcheck disable=SC2086
  if ! installed $pkg; then
    log "$pkg is still not installed in $PREFIX" >&2
    exit 1
  fi
done
log "@grafana/schema $GRAFANA_SCHEMA_VERSION and typescript $TYPESCRIPT_VERSION in $PREFIX"
