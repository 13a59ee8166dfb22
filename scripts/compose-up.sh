#!/usr/bin/env bash
# Starts Cove with docker-compose on this host: makes sure the engine and the sandbox image are
# there, makes the data directory a shared mount (see below), builds the server image, puts Cove's
# firewall rules for environments in place on the host (and checks them), starts the server and
# its firewall helper, then waits until it answers and checks that the server sees the rules.
# Safe to run again, and after a reboot (run it at boot where there is no systemd). Run as root on
# the Docker host.
#
#   COVE_ADMIN_PASSWORD=... bash scripts/compose-up.sh
#
# Variables (all optional): COVE_DATA_DIR (default /var/lib/cove), COVE_BIND, COVE_PORT,
# COVE_PUBLIC_URL, COVE_ADMIN_PASSWORD, COVE_SERVER_BASE, COVE_SERVER_IMAGE, COMPOSE_PROJECT_NAME,
# COVE_UP_WAIT_S (default 120), COVE_SECURITY_EGRESS_POLICY (default enforce: refuse to start
# anything without the firewall rules; `warn` goes on without them, `off` installs none: set these
# only if environments may reach the metadata service, the host and private networks). Extra
# arguments go to `docker-compose up`.
#
# Why the shared mount: Cove loop-mounts the homes under <data dir>/homes inside its container;
# the engine sees them (and can bind them into the users' environments) only when the data
# directory is bind-mounted with rshared propagation, and Docker allows that only for a path on a
# shared mount. With systemd, `/` is shared; without it (containers, minimal hosts) it is private,
# so the data directory is bound onto itself and made shared. That mount is gone after a reboot,
# hence "run it at boot"; the homes themselves are mounted again by Cove when it starts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER=/usr/bin/docker
OFFICIAL_NODE_BASE=node:20-bookworm-slim
export COVE_DATA_DIR=${COVE_DATA_DIR:-/var/lib/cove}
export COVE_BIND=${COVE_BIND:-127.0.0.1}
export COVE_PORT=${COVE_PORT:-8080}
WAIT_S=${COVE_UP_WAIT_S:-120}
export COVE_SECURITY_EGRESS_POLICY=${COVE_SECURITY_EGRESS_POLICY:-enforce}

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'compose-up: %s\n' "$*" >&2
  exit 1
}

case "$COVE_SECURITY_EGRESS_POLICY" in
  enforce | warn | off) ;;
  *) die "COVE_SECURITY_EGRESS_POLICY must be enforce, warn or off (it is \"$COVE_SECURITY_EGRESS_POLICY\")." ;;
esac
[ "$(id -u)" = 0 ] || die "run as root: the data directory must be made a shared mount (mount --make-rshared)."
case "$COVE_DATA_DIR" in
  /*) ;;
  *) die "COVE_DATA_DIR must be an absolute path (it is used as is on the host and in the container)." ;;
esac

bash "$ROOT/scripts/ensure-docker.sh"

if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif "$DOCKER" compose version >/dev/null 2>&1; then
  compose=("$DOCKER" compose)
else
  die "docker-compose is not installed (Debian: apt-get install docker-compose)."
fi
# The project's compose file, wherever this is run from.
compose+=(-f "$ROOT/docker-compose.yml" --project-directory "$ROOT")

say "Sandbox image"
bash "$ROOT/scripts/build-images.sh"

if [ -z "${COVE_SERVER_BASE:-}" ]; then
  if "$DOCKER" image inspect "$OFFICIAL_NODE_BASE" >/dev/null 2>&1 || timeout 120 "$DOCKER" pull -q "$OFFICIAL_NODE_BASE" >/dev/null 2>&1; then
    COVE_SERVER_BASE=$OFFICIAL_NODE_BASE
  else
    say "No $OFFICIAL_NODE_BASE (no registry?): building a Node base from the local Debian base"
    bash "$ROOT/docker/scripts/build-node-base.sh"
    COVE_SERVER_BASE=cove/node-base:20
  fi
fi
export COVE_SERVER_BASE

mkdir -p "$COVE_DATA_DIR"
propagation=$(findmnt -n -o PROPAGATION --target "$COVE_DATA_DIR")
case "$propagation" in
  shared*) ;;
  *)
    say "Making $COVE_DATA_DIR a shared mount (it was $propagation)"
    # Bound onto itself only once: a second bind would hide the homes mounted under the first.
    if [ "$(findmnt -n -o TARGET --target "$COVE_DATA_DIR")" != "$COVE_DATA_DIR" ]; then
      mount --bind "$COVE_DATA_DIR" "$COVE_DATA_DIR"
    fi
    mount --make-rshared "$COVE_DATA_DIR"
    ;;
esac

say "Server image (base $COVE_SERVER_BASE)"
start=$(date +%s)
"${compose[@]}" build
say "Built in $(($(date +%s) - start)) s"

# The firewall before anything starts, and at every run: rules flushed since (a reboot, a firewall
# reload) are put back here, not at the first user's start. The helper runs once on the host's
# network, as the egress service does.
case "$COVE_SECURITY_EGRESS_POLICY" in
  off) say "WARNING: COVE_SECURITY_EGRESS_POLICY=off: no firewall for environments; they can reach the metadata service, this host and private networks" ;;
  *)
    say "Firewall rules for environments"
    if ! "${compose[@]}" run --rm --no-deps -T egress install; then
      [ "$COVE_SECURITY_EGRESS_POLICY" = warn ] ||
        die "Cove's firewall rules for environments could not be put in place on this host (above), so Cove was not started: environments would reach the cloud metadata service (and this host's role credentials), this host and private networks. Fix the cause (Docker must run with its iptables rules; the egress service needs CAP_NET_ADMIN on the host network). Only if you accept that risk: COVE_SECURITY_EGRESS_POLICY=warn."
      say "WARNING: starting without the firewall rules (COVE_SECURITY_EGRESS_POLICY=warn)"
    fi
    ;;
esac

start=$(date +%s)
"${compose[@]}" up -d "$@"

host=$COVE_BIND
[ "$host" = 0.0.0.0 ] && host=127.0.0.1
healthy() (
  # No curl on minimal hosts: a plain HTTP/1.0 request through bash's /dev/tcp. In a subshell,
  # because a failed `exec` redirection ends a non-interactive shell.
  exec 3<>"/dev/tcp/$host/$COVE_PORT" || exit 1
  printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
  IFS= read -r -t 5 status <&3 || exit 1
  [[ $status == "HTTP/1."?" 200"* ]]
)
# "network":true in /readyz: the server reads the host's rules through the helper.
network_ready() (
  exec 3<>"/dev/tcp/$host/$COVE_PORT" || exit 1
  printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
  body=$(timeout 5 cat <&3) || exit 1
  [[ $body == *'"network":true'* ]]
)
answered=
for _ in $(seq 1 "$WAIT_S"); do
  if healthy 2>/dev/null; then
    answered=1
    say "Cove answers at http://$host:$COVE_PORT ($(($(date +%s) - start)) s after up)"
    break
  fi
  sleep 1
done
if [ -z "$answered" ]; then
  "${compose[@]}" logs --tail 40 >&2 || true
  die "Cove did not answer on http://$host:$COVE_PORT/healthz within $WAIT_S s (logs above)."
fi
[ "$COVE_SECURITY_EGRESS_POLICY" = off ] && exit 0
# The server checks the rules at most every 5 s and may have started before the helper listened.
for _ in $(seq 1 30); do
  if network_ready 2>/dev/null; then
    say "The server sees the firewall rules for environments in place"
    exit 0
  fi
  sleep 1
done
"${compose[@]}" logs --tail 40 >&2 || true
[ "$COVE_SECURITY_EGRESS_POLICY" = warn ] && {
  say "WARNING: the server does not see the firewall rules (logs above); environments start anyway (warn)"
  exit 0
}
die "Cove runs but does not see its firewall rules for environments (/readyz: network false), so it will refuse to start environments (COVE_ERR_ENVIRONMENT_NETWORK_POLICY). The logs above say why (is the egress service running?)."
