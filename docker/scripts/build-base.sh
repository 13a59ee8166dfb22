#!/usr/bin/env bash
# Builds cove/debian-base:bookworm from Debian's mirror with debootstrap, for machines that can
# reach deb.debian.org but no container registry. Does nothing when the image already exists.
set -euo pipefail

IMAGE=${COVE_BASE_IMAGE:-cove/debian-base:bookworm}
SUITE=bookworm
MIRROR=${COVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=/usr/bin/docker

die() {
  printf 'build-base: %s\n' "$*" >&2
  exit 1
}

if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root (run as root or build $IMAGE elsewhere)"

if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
  printf 'Installing debootstrap…\n'
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq debootstrap >/dev/null 2>&1; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq debootstrap >/dev/null || die "apt-get install debootstrap failed"
  fi
fi
DEBOOTSTRAP=$(command -v debootstrap || echo /usr/sbin/debootstrap)

WORK=$(mktemp -d /var/tmp/cove-base.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOT=$WORK/rootfs

printf 'Building base image %s with debootstrap (about a minute)…\n' "$IMAGE"
if ! "$DEBOOTSTRAP" --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2
  die "debootstrap failed (log above)"
fi

# debootstrap leaves only the main suite; add updates and security so apt in builds gets fixes.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF

# Make it look like the official slim images: no package lists or caches in the layer, and apt
# configured not to keep downloaded .debs.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/log/*.log
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
# No host identity leaks into the image.
: >"$ROOT/etc/hostname"
rm -f "$ROOT/etc/resolv.conf"

tar -C "$ROOT" --numeric-owner -c . |
  "$DOCKER" import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE" >/dev/null ||
  die "docker import failed"
printf 'Base image %s ready.\n' "$IMAGE"
