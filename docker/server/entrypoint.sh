#!/bin/sh
# Checks, before the server starts, what the homes need when Cove runs in a container, and stops
# with a message that says what to fix instead of handing users empty homes later:
# - the data directory must be a shared (rshared) bind mount at the same path as on the host,
#   or the homes mounted here stay invisible to the engine that bind-mounts them into environments;
# - loop devices must be reachable: the host's /dev, because the kernel creates /dev/loopN nodes
#   there on demand and a container's own /dev is a snapshot taken when it started;
# - mount(2) must be allowed (CAP_SYS_ADMIN).
# COVE_HOMES_ENABLED=false (throwaway homes) needs none of this.
set -eu

data_dir=${COVE_DATA_DIR:-/var/lib/cove}

die() {
  printf 'cove-entrypoint: %s\n' "$*" >&2
  exit 1
}

case "$(printf '%s' "${COVE_HOMES_ENABLED:-true}" | tr '[:upper:]' '[:lower:]')" in
  0 | false | no | off) exec "$@" ;;
esac

mkdir -p "$data_dir"
propagation=$(findmnt -n -o PROPAGATION --target "$data_dir" 2>/dev/null || true)
case "$propagation" in
  shared*) ;;
  *)
    die "$data_dir is not a shared mount in this container (propagation: ${propagation:-unknown}).
Homes mounted here would look empty inside the users' environments. Bind-mount the data directory
at the same path with rshared propagation (see docker-compose.yml), after making it a shared mount
on the host: scripts/compose-up.sh does that, or by hand:
  mount --bind $data_dir $data_dir && mount --make-rshared $data_dir"
    ;;
esac

[ -c /dev/loop-control ] || die "/dev/loop-control is missing: mount the host's /dev (volume /dev:/dev)
and allow the loop devices (device_cgroup_rules 'c 10:237 rwm' and 'b 7:* rwm'), or set
COVE_HOMES_ENABLED=false for throwaway homes."
[ "$(findmnt -n -o FSTYPE /dev 2>/dev/null || true)" = devtmpfs ] || die "/dev is not the host's devtmpfs:
mount it (volume /dev:/dev) so loop devices the kernel adds after the start are visible."

# A mount that does nothing: fails without CAP_SYS_ADMIN, or where a security profile forbids mount.
probe=$(mktemp -d)
if ! mount -t tmpfs -o size=4k cove-probe "$probe" 2>/dev/null; then
  rmdir "$probe"
  die "mount(2) is not allowed: give the container CAP_SYS_ADMIN (cap_add: [SYS_ADMIN]), or set
COVE_HOMES_ENABLED=false for throwaway homes."
fi
umount "$probe"
rmdir "$probe"

exec "$@"
