#!/usr/bin/env bash
# End-to-end check of the docker-compose deployment, as root on a Docker host. Not part of
# `npm test` (it builds an image and takes minutes):
#
#   bash tests/deploy/compose-smoke.sh
#
# Builds and starts the server with scripts/compose-up.sh (its own compose project, data
# directory and loopback port), then through the HTTP API and the terminal WebSocket only: signs
# in as admin, opens a terminal, runs `echo hi > ~/f; cat ~/f; df ~` and checks that the home is
# the loop-mounted ext4 filesystem of the configured size (not an empty or overlay directory), and
# that the file is still there after `docker-compose restart` and after `down` + `up` (a new
# server container).
#
# The firewall, with no step but compose-up: test hosts at 169.254.169.254 (the metadata address)
# and at a private 10.214.x.2 live in a network namespace made here (traffic never leaves this
# machine); a plain container on Docker's default bridge reaches both (the rig works), the
# environment reaches neither, /readyz says the server sees the rules, and with the firewall
# helper stopped a new environment is refused with COVE_ERR_ENVIRONMENT_NETWORK_POLICY. The
# helper also runs once in a network namespace of its own, to see it install the rules from an
# empty firewall (the host's may be in place already) and refuse without Docker's chain.
#
# Then takes everything down: the compose project and its volume, the environments it started,
# the mounts under its data directory, the directory, the network namespace. Exits non-zero on
# any failure and gives up after COVE_SMOKE_TIMEOUT_S (default 600) seconds, cleaning up either
# way.
#
# Variables: COVE_SMOKE_PORT (default 18080), COVE_SMOKE_TIMEOUT_S, COVE_SERVER_BASE (default
# node:20-bookworm-slim when present, else the offline cove/node-base:20),
# COVE_SMOKE_KEEP_IMAGE=0 to remove the server image afterwards (default: keep it, so the next
# run reuses the build cache).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TIMEOUT_S=${COVE_SMOKE_TIMEOUT_S:-600}

# Bounded in time: rerun under timeout(1); SIGTERM at the deadline still runs the cleanup trap.
if [ -z "${COVE_SMOKE_BOUNDED:-}" ]; then
  export COVE_SMOKE_BOUNDED=1
  exec timeout --foreground -k 60 "$TIMEOUT_S" bash "${BASH_SOURCE[0]}" "$@"
fi

DOCKER=/usr/bin/docker
PORT=${COVE_SMOKE_PORT:-18080}
SIZE_BYTES=$((1024 ** 3))
t0=$(date +%s)

say() { printf '[smoke %3d s] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root (the homes are loop mounts)"
command -v docker-compose >/dev/null 2>&1 || fail "docker-compose is not installed (apt-get install docker-compose)"
[ -d "$ROOT/node_modules/ws" ] || fail "run npm ci first (the client uses ws and tsx from node_modules)"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "127.0.0.1:$PORT is taken; set COVE_SMOKE_PORT to a free port"
fi

METADATA=169.254.169.254
if ip route show "$METADATA/32" | grep -q .; then
  fail "a route to $METADATA exists already (another test's test host?); try again when it is gone"
fi
RUN=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
NS=covesmoke-$RUN
VETH_HOST=cvs${RUN}h
VETH_NS=cvs${RUN}n
OCTET=$((RANDOM % 240 + 10))
PRIVATE_HOST=10.214.$OCTET.2
PRIVATE_GW=10.214.$OCTET.1
PROBE_CONTAINER=covesmoke-probe-$RUN
HELPER_CONTAINER=covesmoke-helper-$RUN
test_hosts=

DATA_DIR=$(mktemp -d /var/lib/cove-smoke.XXXXXX)
export COVE_DATA_DIR=$DATA_DIR
export COVE_BIND=127.0.0.1
export COVE_PORT=$PORT
export COVE_PUBLIC_URL=http://127.0.0.1:$PORT
export COVE_SERVER_IMAGE=cove/server:smoke
export COMPOSE_PROJECT_NAME=covesmoke$$
COVE_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export COVE_ADMIN_PASSWORD
export COVE_SMOKE_PASSWORD=$COVE_ADMIN_PASSWORD
if [ -z "${COVE_SERVER_BASE:-}" ] && ! "$DOCKER" image inspect node:20-bookworm-slim >/dev/null 2>&1; then
  export COVE_SERVER_BASE=cove/node-base:20
fi
compose=(docker-compose -f "$ROOT/docker-compose.yml" --project-directory "$ROOT")

# Environments this deployment started: managed containers whose home lies under our data dir
# (other Cove servers may share the engine; their containers are not ours to touch).
our_environments() {
  local id
  for id in $("$DOCKER" ps -aq --filter label=cove.managed=true); do
    if "$DOCKER" inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$id" 2>/dev/null |
      grep -q "^$DATA_DIR/"; then
      echo "$id"
    fi
  done
}

# Long steps run in the background and are waited for: bash runs a trap only once the foreground
# command ends, so the deadline's SIGTERM would otherwise wait for a hung step.
child=
step() {
  local rc=0
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=
  return "$rc"
}
kill_tree() {
  local pid=$1 sub
  for sub in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill_tree "$sub"; done
  kill "$pid" 2>/dev/null
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  say "Cleaning up"
  if [ -n "$child" ]; then
    kill_tree "$child"
    wait "$child" 2>/dev/null
  fi
  if [ "$status" != 0 ]; then
    "${compose[@]}" logs --no-color --tail 60 >&2 2>/dev/null
  fi
  "${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1
  for id in $(our_environments); do "$DOCKER" rm -f "$id" >/dev/null; done
  "$DOCKER" rm -f "$PROBE_CONTAINER" "$HELPER_CONTAINER" >/dev/null 2>&1
  if [ -n "$test_hosts" ]; then
    kill "$test_hosts" 2>/dev/null
    wait "$test_hosts" 2>/dev/null
  fi
  ip route del "$METADATA/32" dev "$VETH_HOST" 2>/dev/null
  ip link del "$VETH_HOST" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  # Deepest first: the homes, then the data directory's bind onto itself.
  findmnt -R -n -l -o TARGET "$DATA_DIR" 2>/dev/null | sort -r | while read -r target; do
    umount "$target" || umount -l "$target"
  done
  if findmnt -R -n "$DATA_DIR" >/dev/null 2>&1; then
    say "mounts left under $DATA_DIR; not deleting it"
    status=1
  else
    rm -rf "$DATA_DIR"
  fi
  rm -f "$DATA_DIR.client.json" "$DATA_DIR.refusal.txt" "$DATA_DIR.helper.txt"
  if [ "${COVE_SMOKE_KEEP_IMAGE:-1}" = 0 ]; then "$DOCKER" rmi "$COVE_SERVER_IMAGE" >/dev/null 2>&1; fi
  if [ "$status" = 0 ]; then say "PASS"; else say "exit $status"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The client's JSON line lands in $result. Not run in $(...): bash would hold the deadline's trap
# until a command substitution ends.
result=
client() {
  local out=$DATA_DIR.client.json
  step "$ROOT/node_modules/.bin/tsx" "$ROOT/tests/deploy/compose-client.ts" "$COVE_PUBLIC_URL" "$1" >"$out" || {
    rm -f "$out"
    return 1
  }
  result=$(<"$out")
  rm -f "$out"
}
# field '<json>' a.b: one value from the client's JSON line (objects as JSON).
field() {
  node -e '
    const v = process.argv[2].split(".").reduce((o, k) => o?.[k], JSON.parse(process.argv[1]));
    console.log(typeof v === "object" ? JSON.stringify(v) : (v ?? ""));
  ' "$1" "$2"
}

say "Data dir $DATA_DIR, project $COMPOSE_PROJECT_NAME, $COVE_PUBLIC_URL"

# Test hosts for the firewall check, as tests/security/network-egress.test.ts makes them: a
# network namespace joined to the host by a veth pair, holding the metadata address and a private
# one, each serving HTTP on port 80.
ip netns add "$NS"
ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
ip link set "$VETH_NS" netns "$NS"
ip addr add "$PRIVATE_GW/24" dev "$VETH_HOST"
ip link set "$VETH_HOST" up
ip netns exec "$NS" ip addr add "$PRIVATE_HOST/24" dev "$VETH_NS"
ip netns exec "$NS" ip addr add "$METADATA/32" dev "$VETH_NS"
ip netns exec "$NS" ip link set "$VETH_NS" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip route add default via "$PRIVATE_GW"
ip route add "$METADATA/32" dev "$VETH_HOST"
ip netns exec "$NS" python3 -m http.server --bind 0.0.0.0 80 >/dev/null 2>&1 &
test_hosts=$!
TARGETS=("http://$METADATA/latest/meta-data/iam/security-credentials/" "http://$PRIVATE_HOST/")
answer_from_host() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null
}
for _ in $(seq 1 50); do
  answer_from_host "http://$METADATA/" && answer_from_host "http://$PRIVATE_HOST/" && break
  sleep 0.2
done
answer_from_host "http://$METADATA/" && answer_from_host "http://$PRIVATE_HOST/" ||
  fail "the test hosts in network namespace $NS do not answer from the host"
# Positive control: a container outside Cove's networks (Docker's default bridge, no Cove rules)
# reaches both, so a refusal from an environment is the firewall's doing, not a broken rig.
for url in "${TARGETS[@]}"; do
  code=$("$DOCKER" run --rm --name "$PROBE_CONTAINER" --network bridge --entrypoint curl cove/sandbox:latest \
    -s -m 4 -o /dev/null -w '%{http_code}' "$url" || true)
  [[ $code == 200 || $code == 404 ]] || fail "a plain container cannot reach the test host $url (HTTP $code): the rig is broken"
done
say "test hosts at $METADATA and $PRIVATE_HOST answer a plain container on Docker's bridge"
build_start=$(date +%s)
# The offline base is compose-up's own fallback only when no base is named; here it is named.
if [ "${COVE_SERVER_BASE:-}" = cove/node-base:20 ]; then
  step bash "$ROOT/docker/scripts/build-node-base.sh" || fail "build-node-base failed"
fi
step bash "$ROOT/scripts/compose-up.sh" || fail "compose-up failed"
say "compose-up (images, build, start, healthy) took $(($(date +%s) - build_start)) s"

# 1. The helper puts the rules in place from nothing, and says when it cannot. On this host the
# rules may already be there (the one-shot install above then only checks), so this runs the
# image's helper in a network namespace of its own (--network none) where it starts from an empty
# firewall; the host's rules are not touched.
helper_run=$DATA_DIR.helper.txt
step "$DOCKER" run --rm --name "$HELPER_CONTAINER" --network none --cap-drop ALL --cap-add NET_ADMIN \
  --security-opt no-new-privileges:true --entrypoint sh "$COVE_SERVER_IMAGE" -c '
    cove-egress-helper install; echo "rc=$? without DOCKER-USER"
    iptables -N DOCKER-USER && iptables -A DOCKER-USER -j RETURN
    cove-egress-helper install; echo "rc=$? from nothing"
    cove-egress-helper check; echo "rc=$? again"
    iptables -S DOCKER-USER | sed -n 2p' >"$helper_run" 2>&1 || fail "the helper's own test run failed"
sed 's/^/    | /' "$helper_run" >&2
grep -q "^rc=1 without DOCKER-USER" "$helper_run" && grep -q "DOCKER-USER is missing" "$helper_run" ||
  fail "the helper did not refuse a firewall without Docker's DOCKER-USER chain"
grep -q "^rc=0 from nothing" "$helper_run" && grep -q "^rc=0 again" "$helper_run" &&
  grep -qx -- "-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS" "$helper_run" ||
  fail "the helper did not put the rules in place from an empty firewall"
rm -f "$helper_run"
say "the helper installs the rules from an empty firewall (own namespace) and refuses without DOCKER-USER"

# 2. A new home: write a file and look at the filesystem the shell sees as ~.
client 'echo hi > ~/f; cat ~/f; df -P -B1 ~ | tail -n 1; stat -f -c %T ~; mountpoint ~' || fail "first terminal"
output=$(field "$result" output)
say "first terminal: prompt $(field "$result" promptAfterOpenMs) ms after sign-in (phases $(field "$result" ms.phases))"
printf '%s\n' "$output" | sed 's/^/    | /' >&2
[ "$(printf '%s\n' "$output" | sed -n 1p)" = hi ] || fail "cat ~/f did not print hi"
read -r fs total _ <<<"$(printf '%s\n' "$output" | sed -n 2p)"
[[ $fs == /dev/loop* ]] || fail "the home is on $fs, not a loop device"
# ext4 keeps some blocks for itself: the usable size is a little under the file's size.
((total > SIZE_BYTES * 85 / 100 && total <= SIZE_BYTES)) || fail "the home is $total bytes, not about 1 GiB"
[ "$(printf '%s\n' "$output" | sed -n 3p)" = ext2/ext3 ] || fail "the home is not ext4"
printf '%s\n' "$output" | grep -q 'is a mountpoint' || fail "~ is not a mount point in the environment"

# The engine (host side) sees the same filesystem: the environment's bind source is a loop mount.
env_ids=$(our_environments)
[ -n "$env_ids" ] || fail "no environment container with a home under $DATA_DIR"
for id in $env_ids; do
  source=$("$DOCKER" inspect -f '{{range .Mounts}}{{if eq .Destination "/home/cloudshell-user"}}{{.Source}}{{end}}{{end}}' "$id")
  [ -n "$source" ] || fail "environment $id has no home bind"
  [[ $(findmnt -n -o SOURCE --mountpoint "$source") == /dev/loop* ]] ||
    fail "on the host, $source is not a loop mount"
  [ "$(cat "$source/f")" = hi ] || fail "on the host, $source/f does not hold hi"
done
say "the home is a $((total / 1024 / 1024)) MiB ext4 loop mount, seen by the host engine"

readyz() (
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
  printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  timeout 5 cat <&3 | tail -n 1
)

# 3. The firewall, from inside the environment: neither test host answers (curl: 000 and an error).
client "for u in ${TARGETS[*]}; do curl -s -m 4 -o /dev/null -w '%{http_code}' \"\$u\"; echo \" \$?\"; done" ||
  fail "terminal for the firewall check"
output=$(field "$result" output)
printf '%s\n' "$output" | sed 's/^/    | /' >&2
[ "$(printf '%s\n' "$output" | grep -cE '^000 [1-9][0-9]*$')" = 2 ] ||
  fail "the environment reached $METADATA or $PRIVATE_HOST (expected no answer from either)"
[[ $(readyz) == *'"network":true'* ]] || fail "/readyz does not report the firewall rules in place: $(readyz)"
say "from the environment, $METADATA and $PRIVATE_HOST do not answer; /readyz network: true"

check_file_survives() {
  local output
  client 'cat ~/f; df -P ~ | tail -n 1 | cut -d" " -f1' || fail "terminal after $1"
  output=$(field "$result" output)
  say "after $1: prompt $(field "$result" promptAfterOpenMs) ms after sign-in (phases $(field "$result" ms.phases))"
  printf '%s\n' "$output" | sed 's/^/    | /' >&2
  [ "$(printf '%s\n' "$output" | sed -n 1p)" = hi ] || fail "the file f in the home is gone after $1"
  [[ $(printf '%s\n' "$output" | sed -n 2p) == /dev/loop* ]] || fail "the home is not the loop mount after $1"
}

healthy() (
  # A failed `exec` redirection ends a non-interactive shell: hence the subshell.
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 5 status <&3 || exit 1
  [[ $status == "HTTP/1."?" 200"* ]]
)
wait_healthy() {
  local started=$SECONDS
  for _ in $(seq 1 120); do
    if healthy 2>/dev/null; then
      say "healthy again $((SECONDS - started)) s after $1"
      return 0
    fi
    sleep 1
  done
  fail "the server did not come back on $COVE_PUBLIC_URL after $1"
}

# 4. The server restarts (same container).
step "${compose[@]}" restart >/dev/null 2>&1 || fail "docker-compose restart"
wait_healthy 'restart'
check_file_survives 'docker-compose restart'

# 5. A new server container (an upgrade does this): the homes are still mounted on the host and
# the new container's rshared bind must carry them.
step "${compose[@]}" down >/dev/null 2>&1 || fail "docker-compose down"
step "${compose[@]}" up -d >/dev/null 2>&1 || fail "docker-compose up"
wait_healthy 'down + up'
check_file_survives 'docker-compose down + up'

# 6. The server cannot check the firewall (its helper is stopped): no new environment starts. A
# restart of the server forgets the running environment, which is removed.
step "${compose[@]}" stop egress >/dev/null 2>&1 || fail "docker-compose stop egress"
for id in $(our_environments); do "$DOCKER" rm -f "$id" >/dev/null; done
step "${compose[@]}" restart cove >/dev/null 2>&1 || fail "docker-compose restart cove"
wait_healthy 'restart without the firewall helper'
[[ $(readyz) == *'"network":false'* ]] || fail "/readyz does not report the missing firewall: $(readyz)"
refusal=$DATA_DIR.refusal.txt
if step "$ROOT/node_modules/.bin/tsx" "$ROOT/tests/deploy/compose-client.ts" "$COVE_PUBLIC_URL" 'echo started' >/dev/null 2>"$refusal"; then
  rm -f "$refusal"
  fail "an environment started although the server cannot check the firewall"
fi
sed 's/^/    | /' "$refusal" >&2
grep -q 'answered 503: .*COVE_ERR_ENVIRONMENT_NETWORK_POLICY' "$refusal" || {
  rm -f "$refusal"
  fail "the terminal was not refused with 503 COVE_ERR_ENVIRONMENT_NETWORK_POLICY"
}
rm -f "$refusal"
[ -z "$(our_environments)" ] || fail "an environment container exists after the refusal"
say "without the firewall helper: 503 COVE_ERR_ENVIRONMENT_NETWORK_POLICY, no environment"

say "all checks passed in $(($(date +%s) - t0)) s"
