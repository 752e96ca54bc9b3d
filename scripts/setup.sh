#!/usr/bin/env bash
# setup.sh — installs what the build and the tests need, only what is missing:
# Debian packages (when run as root; otherwise it says what to install) and the npm
# packages the tests use (tests/node, tests/claude; not with --runtime). Idempotent and quiet
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(cmake make gcc pkg-config xz-utils nodejs npm python3
      libmicrohttpd-dev libjansson-dev libpcre2-dev libutf8proc-dev libcurl4-openssl-dev
      libcmocka-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian: accept them when on PATH
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# `setup.sh --runtime` (make run) stops here: the npm packages are only for the tests.
[[ ${1:-} == --runtime ]] && exit 0

# npm test dependencies, reinstalled only when their package.json changed: tests/node (the
# oracles and client SDKs, small) and tests/claude (Claude Code, a ~380 MB native binary,
# kept apart so the small set installs fast). PV_SKIP_CLAUDE=1 leaves Claude Code out (its
# test then skips, or fails under CI).
npm_dirs=(tests/node)
[[ ${PV_SKIP_CLAUDE:-0} == 1 ]] || npm_dirs+=(tests/claude)
for d in "${npm_dirs[@]}"; do
  [[ -f $d/package.json ]] || continue
  stamp=$d/node_modules/.pv-stamp
  if [[ ! -f $stamp || $d/package.json -nt $stamp ]]; then
    echo "setup: installing npm test packages into $d/node_modules"
    (cd "$d" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$stamp"
  fi
done
