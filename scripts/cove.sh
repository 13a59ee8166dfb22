#!/usr/bin/env bash
# One entry point behind `npm start`, `npm test`, `npm run dev` and `npm run bench`.
# Each installs what is missing first (npm packages; on Debian as root also the system packages
# and the Docker engine), builds, then runs. Safe to run again: every step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'cove: %s\n' "$*" >&2; exit 1; }

is_debian_root() { [[ -f /etc/debian_version && $(id -u) -eq 0 ]]; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  if ! is_debian_root; then
    die "missing system packages: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run this again."
  fi
  say "Installing system packages: ${missing[*]}"
  if [[ ! -f /var/lib/apt/periodic/cove-updated ]] || ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/cove-updated
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_node() {
  command -v node >/dev/null || die "Node.js 20.19 or newer is required (https://nodejs.org, or: apt-get install nodejs npm)."
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "Node.js 20.19 or newer is required; this is $(node -v)."
}

ensure_npm_deps() {
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    say "Installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

ensure_build() {
  say "Building (tsc + vite)"
  npm run --silent build >/dev/null
}

ensure_engine_and_images() {
  bash scripts/ensure-docker.sh
  bash scripts/build-images.sh
}

ensure_browser() {
  if [[ -x /usr/bin/chromium ]]; then return 0; fi
  apt_install chromium
}

# The store contract tests start a throwaway PostgreSQL 15 of their own (tests/helpers/postgres.ts)
# from the package's binaries; the cluster and service the package sets up are not used.
ensure_postgres() {
  if [[ -x /usr/lib/postgresql/15/bin/postgres ]]; then return 0; fi
  apt_install postgresql
}

case "${1:-}" in
  start)
    ensure_node
    ensure_npm_deps
    ensure_engine_and_images
    ensure_build
    exec node dist/server/main.js
    ;;
  dev)
    ensure_node
    ensure_npm_deps
    ensure_engine_and_images
    # Pages rebuild on change (served by the server from dist/web); the server restarts on change.
    npx vite build --watch --mode development >/dev/null &
    trap 'kill %1 2>/dev/null' EXIT
    npx tsx watch server/main.ts
    ;;
  test)
    ensure_node
    ensure_npm_deps
    ensure_engine_and_images
    ensure_browser
    ensure_postgres
    ensure_build
    say "Lint (eslint, zero warnings) and format check (prettier)"
    npx eslint --max-warnings 0 .
    npx prettier --check . >/dev/null || { npx prettier --check . || true; die "formatting differs: run npm run format"; }
    say "Tests (vitest: unit, integration, e2e, then the fault tests)"
    exec npx vitest run
    ;;
  bench)
    ensure_node
    ensure_npm_deps
    ensure_engine_and_images
    ensure_build
    exec npx tsx tests/bench/run.ts
    ;;
  *)
    die "usage: scripts/cove.sh start|dev|test|bench"
    ;;
esac
