#!/usr/bin/env bash
# Builds cove/node-base:20 (Debian bookworm + this machine's Node.js, npm and Node headers) for
# building the server image where no registry is reachable. Elsewhere, use node:20-bookworm-slim.
#
# The machine's local certificate authorities (/usr/local/share/ca-certificates/*.crt) go into
# the image too: where HTTPS is intercepted by a proxy, `npm ci` in the server build fails with
# SELF_SIGNED_CERT_IN_CHAIN without them. Node reads them through NODE_EXTRA_CA_CERTS, and
# update-ca-certificates (run when a later layer installs ca-certificates) picks them up as well.
#
# Rebuilds only when an input changed (Node version, npm version, the CAs, this script): the
# image carries a digest of them in the label cove.node-base.inputs.
set -euo pipefail
IMAGE=${COVE_NODE_BASE_IMAGE:-cove/node-base:20}
DOCKER=/usr/bin/docker
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL_CA_DIR=/usr/local/share/ca-certificates

die() {
  printf 'build-node-base: %s\n' "$*" >&2
  exit 1
}

node_bin=$(command -v node) || die "Node.js is not installed on this machine"
node_prefix=$(dirname "$(dirname "$(readlink -f "$node_bin")")")
npm_dir=$node_prefix/lib/node_modules/npm
[ -d "$npm_dir" ] || die "npm not found under $node_prefix/lib/node_modules"
[ -d "$node_prefix/include/node" ] || die "Node headers not found under $node_prefix/include/node"

shopt -s nullglob
cas=("$LOCAL_CA_DIR"/*.crt)
shopt -u nullglob

inputs=$(
  {
    node --version
    node -p 'require(process.argv[1] + "/package.json").version' "$npm_dir"
    cat "${BASH_SOURCE[0]}"
    ((${#cas[@]} == 0)) || cat "${cas[@]}"
  } | sha256sum | cut -c1-16
)

current=$("$DOCKER" image inspect -f '{{index .Config.Labels "cove.node-base.inputs"}}' "$IMAGE" 2>/dev/null || true)
[ "$current" = "$inputs" ] && exit 0

bash "$ROOT/docker/scripts/build-base.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx/usr/bin" "$work/ctx/usr/lib/node_modules" "$work/ctx/usr/include" \
  "$work/ctx/usr/local/share/ca-certificates"
cp "$(readlink -f "$node_bin")" "$work/ctx/usr/bin/node"
cp -a "$npm_dir" "$work/ctx/usr/lib/node_modules/npm"
cp -a "$node_prefix/include/node" "$work/ctx/usr/include/node"
for ca in "${cas[@]}"; do cp "$ca" "$work/ctx/usr/local/share/ca-certificates/"; done
# Always present (possibly empty), so NODE_EXTRA_CA_CERTS never names a missing file.
cat /dev/null "${cas[@]}" >"$work/ctx/usr/local/share/ca-certificates/cove-extra-cas.pem"
cat >"$work/ctx/Dockerfile" <<DOCKERFILE
FROM cove/debian-base:bookworm
COPY usr/ /usr/
RUN ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm \\
 && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/bin/npx \\
 && node --version && npm --version
# node-gyp uses these headers instead of downloading them.
ENV npm_config_nodedir=/usr \\
    NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/cove-extra-cas.pem
LABEL cove.node-base.inputs=$inputs
DOCKERFILE
printf 'Building %s from the local Debian base and this machine'"'"'s Node.js %s (%d local CA file(s))…\n' \
  "$IMAGE" "$(node --version)" "${#cas[@]}"
"$DOCKER" build -q -t "$IMAGE" "$work/ctx" >/dev/null || die "docker build failed"
