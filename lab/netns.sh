#!/usr/bin/env bash
# The lab's own network namespace: every lab process runs inside it, so lab traffic
# can only reach loopback and the namespace's own veth pair, never another host.
#   lab/netns.sh up | down | exec CMD... | status
# Without root (a developer laptop), set SWITCHBOARD_LAB_HOST_NETWORK=1 and
# LAB_HOST_IP=<a non-loopback address of this machine>: `exec` then runs on the host.
set -euo pipefail

NS=${LAB_NETNS_NAME:-switchboard-lab}
SERVER_IP=${LAB_NETNS_SERVER_IP:-10.213.77.1}
PHONE_IP=${LAB_NETNS_PHONE_IP:-10.213.77.2}

host_mode() { [[ "${SWITCHBOARD_LAB_HOST_NETWORK:-0}" == 1 ]]; }

up() {
  host_mode && return 0
  if [[ $(id -u) != 0 ]]; then
    echo "lab: creating a network namespace needs root; on a laptop run with" \
         "SWITCHBOARD_LAB_HOST_NETWORK=1 LAB_HOST_IP=<your LAN address>" >&2
    exit 1
  fi
  if ip netns list | grep -qw "^$NS"; then return 0; fi
  ip netns add "$NS"
  # Both ends of the veth pair stay inside the namespace: WebRTC gets a non-loopback
  # interface, and nothing is connected to the host's network.
  ip -n "$NS" link set lo up
  ip -n "$NS" link add v0 type veth peer name v1
  ip -n "$NS" addr add "$SERVER_IP/24" dev v0
  ip -n "$NS" addr add "$PHONE_IP/24" dev v1
  ip -n "$NS" link set v0 up
  ip -n "$NS" link set v1 up
}

down() {
  host_mode && return 0
  if ip netns list | grep -qw "^$NS"; then ip netns delete "$NS"; fi
}

run() {
  if host_mode; then
    : "${LAB_HOST_IP:?set LAB_HOST_IP to a non-loopback address of this machine}"
    export LAB_NETNS="" LAB_SERVER_IP="$LAB_HOST_IP" LAB_PHONE_IP="$LAB_HOST_IP"
    exec "$@"
  fi
  up
  export LAB_NETNS="$NS" LAB_SERVER_IP="$SERVER_IP" LAB_PHONE_IP="$PHONE_IP"
  exec ip netns exec "$NS" "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  exec) shift; run "$@" ;;
  status) ip netns list | grep -w "^$NS" || echo "no namespace $NS" ;;
  *) echo "usage: $0 up|down|exec CMD...|status" >&2; exit 2 ;;
esac
