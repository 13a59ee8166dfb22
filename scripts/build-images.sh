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

bash "$ROOT/scripts/ensure-docker.sh" || die "no Docker engine (see above)"

# Stable across machines and checkouts: sorted relative paths, the executable bit (it changes what
# the image does) and content; not mtimes or owners.
content_hash() {
  (
    cd "$CONTEXT"
    find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' file; do
      if [ -x "$file" ]; then mode=755; else mode=644; fi
      printf '%s %s %s\n' "$(sha256sum <"$file" | cut -d' ' -f1)" "$mode" "$file"
    done
  ) | sha256sum | cut -c1-12
}

HASH=$(content_hash)
TAG=$REPO:$HASH

# One engine round trip for the common case: the image exists and :latest already points at it.
if tags=$("$DOCKER" image inspect -f '{{range .RepoTags}}{{.}} {{end}}' "$TAG" 2>/dev/null); then
  # Keep :latest pointing at what this checkout describes, e.g. after switching branches.
  case " $tags" in
    *" $REPO:latest "*) ;;
    *) "$DOCKER" tag "$TAG" "$REPO:latest" ;;
  esac
  exit 0
fi

if "$DOCKER" image inspect "$OFFICIAL_BASE" >/dev/null 2>&1; then
  BASE=$OFFICIAL_BASE
else
  # No registry reachable here: make a base from Debian's mirror instead of pulling.
  bash "$ROOT/docker/scripts/build-base.sh" || die "could not build the base image $LOCAL_BASE"
  BASE=$LOCAL_BASE
fi

LOG=$(mktemp /tmp/cove-build-images.XXXXXX.log)
printf 'Building sandbox image %s from %s (first time, about 3 minutes; longer on a busy machine)…\n' "$TAG" "$BASE"
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
