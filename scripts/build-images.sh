#!/usr/bin/env bash
# Builds the sandbox image cove/sandbox:<contenthash> (+ :latest) when that exact content has not
# been built yet. contenthash covers every file under docker/sandbox (paths, modes, bytes), so a
# second run with nothing changed only hashes and asks the engine, and takes well under 2 s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTEXT=$ROOT/docker/sandbox
DOCKER=/usr/bin/docker
REPO=cove/sandbox
OFFICIAL_BASE=debian:bookworm-slim
LOCAL_BASE=cove/debian-base:bookworm

die() {
  printf 'build-images: %s\n' "$*" >&2
  exit 1
}

# Stable across machines and checkouts: sorted relative paths, the executable bit (it changes what
# the image does) and content; not mtimes or owners.
# A handful of processes in total, not a few per file: this runs on every `npm start`.
content_hash() {
  (
    cd "$CONTEXT"
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "executable:"
    find . -type f -perm -u+x -print | LC_ALL=C sort
  ) | sha256sum | cut -c1-12
}

HASH=$(content_hash)
TAG=$REPO:$HASH

# One engine round trip for the common case: the image exists (so the engine is up, too) and
# :latest already points at it.
if tags=$("$DOCKER" image inspect -f '{{range .RepoTags}}{{.}} {{end}}' "$TAG" 2>/dev/null); then
  # Keep :latest pointing at what this checkout describes, e.g. after switching branches.
  case " $tags" in
    *" $REPO:latest "*) ;;
    *) "$DOCKER" tag "$TAG" "$REPO:latest" ;;
  esac
  exit 0
fi

bash "$ROOT/scripts/ensure-docker.sh" || die "no Docker engine (see above)"

if "$DOCKER" image inspect "$OFFICIAL_BASE" >/dev/null 2>&1; then
  BASE=$OFFICIAL_BASE
else
  # No registry reachable here: make a base from Debian's mirror instead of pulling.
  bash "$ROOT/docker/scripts/build-base.sh" || die "could not build the base image $LOCAL_BASE"
  BASE=$LOCAL_BASE
fi

LOG=$(mktemp /tmp/cove-build-images.XXXXXX.log)
if [ -n "$("$DOCKER" image ls -q "$REPO" 2>/dev/null)" ]; then
  printf 'Rebuilding sandbox image %s (docker/sandbox changed)…\n' "$TAG"
else
  printf 'Building sandbox image %s from %s (first time, about 3 minutes; longer on a busy machine)…\n' "$TAG" "$BASE"
fi
start=$(date +%s)
if ! "$DOCKER" build \
  --build-arg "BASE=$BASE" \
  --build-arg "IMAGE_VERSION=$HASH" \
  -t "$TAG" -t "$REPO:latest" \
  "$CONTEXT" >"$LOG" 2>&1; then
  tail -n 40 "$LOG" >&2
  die "docker build failed; full log in $LOG"
fi
rm -f "$LOG"
printf 'Sandbox image %s ready (%s s).\n' "$TAG" "$(($(date +%s) - start))"
