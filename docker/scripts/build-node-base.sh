#!/usr/bin/env bash
# Builds cove/node-base:20 (Debian bookworm + this machine's Node.js, npm and Node headers) for
# building the server image where no registry is reachable. Elsewhere, use node:20-bookworm-slim.
set -euo pipefail
IMAGE=${COVE_NODE_BASE_IMAGE:-cove/node-base:20}
DOCKER=/usr/bin/docker
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

"$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
bash "$ROOT/docker/scripts/build-base.sh"

node_bin=$(command -v node)
node_prefix=$(dirname "$(dirname "$(readlink -f "$node_bin")")")
npm_dir=$node_prefix/lib/node_modules/npm
[ -d "$npm_dir" ] || { echo "build-node-base: npm not found under $node_prefix/lib/node_modules" >&2; exit 1; }
[ -d "$node_prefix/include/node" ] || { echo "build-node-base: Node headers not found under $node_prefix/include/node" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx/usr/bin" "$work/ctx/usr/lib/node_modules" "$work/ctx/usr/include"
cp "$(readlink -f "$node_bin")" "$work/ctx/usr/bin/node"
cp -a "$npm_dir" "$work/ctx/usr/lib/node_modules/npm"
cp -a "$node_prefix/include/node" "$work/ctx/usr/include/node"
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM cove/debian-base:bookworm
COPY usr/ /usr/
RUN ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm \
 && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/bin/npx \
 && node --version && npm --version
# node-gyp uses these headers instead of downloading them.
ENV npm_config_nodedir=/usr
DOCKERFILE
printf 'Building %s from the local Debian base and this machine'"'"'s Node.js %s…\n' "$IMAGE" "$(node --version)"
"$DOCKER" build -q -t "$IMAGE" "$work/ctx" >/dev/null
