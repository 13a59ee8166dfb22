#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock. Installs and starts Debian's
# docker.io when it can (Debian + root, no systemd); otherwise says what to install and exits 1.
# Idempotent and silent when the engine is already up.
set -euo pipefail

# A newer client may sit earlier on PATH (/usr/local/bin/docker) and carry no engine: always use
# Debian's binary, which matches the engine's API version.
DOCKER=/usr/bin/docker
# Debian ships the engine in /usr/sbin; other packagings use /usr/bin.
DOCKERD=""
find_dockerd() {
  for candidate in /usr/sbin/dockerd /usr/bin/dockerd; do
    if [ -x "$candidate" ]; then
      DOCKERD=$candidate
      return 0
    fi
  done
  return 1
}
SOCKET=/var/run/docker.sock
DAEMON_JSON=/etc/docker/daemon.json
LOG=/var/log/dockerd.log
WAIT_S=60

log() { printf '%s\n' "$*" >&2; }
die() {
  log "ensure-docker: $*"
  exit 1
}

# `docker version` needs the engine to answer but is cheaper than `docker info`.
engine_up() { [ -S "$SOCKET" ] && [ -x "$DOCKER" ] && "$DOCKER" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

if engine_up; then
  exit 0
fi

is_debian() { [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }

if [ "$(id -u)" != 0 ] && [ -S "$SOCKET" ] && [ ! -w "$SOCKET" ]; then
  die "a Docker engine socket exists at $SOCKET but $(id -un) may not use it.
Add the user to the docker group (usermod -aG docker $(id -un), then log in again) or run as root."
fi

if [ "$(id -u)" != 0 ] || ! is_debian; then
  die "no Docker engine reachable at $SOCKET.
Install and start Docker Engine (on Debian/Ubuntu as root: apt-get install -y docker.io; dockerd &),
or run this script as root on Debian so it can do it for you."
fi

if ! find_dockerd || [ ! -x "$DOCKER" ]; then
  log "Installing Docker (apt-get install docker.io)…"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine often has empty package lists; only refresh when the package is unknown.
  if ! apt-cache show docker.io >/dev/null 2>&1; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
  fi
  if ! apt-get install -y -qq docker.io >/dev/null; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq docker.io >/dev/null || die "apt-get install docker.io failed"
  fi
  find_dockerd || die "docker.io is installed but no dockerd binary was found"
fi

# Merge our keys into daemon.json without dropping what an operator put there. jq may be absent;
# node is always here because Cove runs on it.
mkdir -p "$(dirname "$DAEMON_JSON")"
node --input-type=module -e '
  import { readFileSync, writeFileSync, existsSync } from "node:fs";
  const path = process.argv[1];
  let current = {};
  if (existsSync(path)) {
    const text = readFileSync(path, "utf8").trim();
    if (text) {
      try { current = JSON.parse(text); }
      catch (err) { console.error(`ensure-docker: ${path} is not valid JSON: ${err.message}`); process.exit(1); }
    }
  }
  const wanted = {
    "live-restore": true,
    "log-driver": "json-file",
    "log-opts": { "max-size": "10m", "max-file": "3" },
  };
  const merged = { ...current, ...wanted, "log-opts": { ...(current["log-opts"] ?? {}), ...wanted["log-opts"] } };
  const next = JSON.stringify(merged, null, 2) + "\n";
  if (!existsSync(path) || readFileSync(path, "utf8") !== next) writeFileSync(path, next);
' "$DAEMON_JSON"

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "Starting dockerd (log: $LOG)…"
  # No systemd on these machines: run it detached so it outlives this script.
  nohup "$DOCKERD" >"$LOG" 2>&1 </dev/null &
  disown || true
fi

for _ in $(seq 1 "$WAIT_S"); do
  if engine_up; then
    exit 0
  fi
  sleep 1
  # Fail fast instead of waiting the full minute when the daemon died at start.
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    die "dockerd exited at start. Last lines of $LOG:
$(tail -n 20 "$LOG" 2>/dev/null || true)"
  fi
done

die "dockerd did not answer on $SOCKET within ${WAIT_S} s. Last lines of $LOG:
$(tail -n 20 "$LOG" 2>/dev/null || true)"
