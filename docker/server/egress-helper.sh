#!/bin/sh
# Starts Cove's firewall helper (sandbox/docker/egress-helper-main.js) on the host's network. The rules
# must go where the host's Docker keeps its own: iptables has two backends (nf_tables and the
# legacy tables) and a rule in the other one is never seen by the kernel path Docker uses. Debian's
# default here is nf_tables; switch to legacy only when Docker's DOCKER-USER chain is there and
# not in nf_tables.
set -eu

if ! iptables-nft -w -S DOCKER-USER >/dev/null 2>&1 && iptables-legacy -w -S DOCKER-USER >/dev/null 2>&1; then
  update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy
  update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy
fi
exec node /app/dist/sandbox/docker/egress-helper-main.js "$@"
