# Shared helpers for the interop tests (bash; source it). Every test builds its own little
# world of network namespaces with unique names and removes all of it on exit, even when the
# test fails or is interrupted. Traffic stays inside those namespaces.
#
#   mg_init                     unique prefix, cleanup trap; call first
#   mg_netns NAME               create namespace "$MG_PREFIX-NAME" with lo up; echo its name
#   mg_veth NS_A IF_A NS_B IF_B a veth pair with one end in each namespace, offloads off
#   mg_in NS CMD...             run CMD inside namespace NS, echoing it
#   mg_wireguard_go NS IFNAME   start wireguard-go for IFNAME in NS and wait for its UAPI socket
#   mg_fail MESSAGE             print and exit 1 (cleanup still runs)

set -euo pipefail
umask 077  # key files the tests write are for root's eyes only, as wg insists

MG_PREFIX=""
MG_NAMESPACES=()
MG_INTERFACES=()

mg_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mg_fail() { mg_log "FAIL: $*"; exit 1; }

mg_cleanup() {
  local status=$?
  local ns
  for ns in "${MG_NAMESPACES[@]}"; do
    # Everything started inside a namespace dies with it: wireguard-go, iperf3, harnesses.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  sleep 0.2
  for ns in "${MG_NAMESPACES[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  local ifname
  for ifname in "${MG_INTERFACES[@]}"; do
    rm -f "/var/run/wireguard/$ifname.sock"
  done
  exit "$status"
}

mg_init() {
  [ "$(id -u)" -eq 0 ] || mg_fail "interop tests need root (network namespaces)"
  # Short: interface names derive from it and Linux allows 15 characters.
  MG_PREFIX="mg$(printf '%04x' $((RANDOM % 65536)))$$"
  MG_PREFIX=${MG_PREFIX:0:9}
  trap mg_cleanup EXIT
  trap 'exit 130' INT TERM
}

mg_netns() {
  local ns="$MG_PREFIX-$1"
  ip netns add "$ns"
  MG_NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  echo "$ns"
}

mg_in() {
  local ns=$1
  shift
  mg_log "($ns) $*"
  ip netns exec "$ns" "$@"
}

mg_veth() {
  local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4
  ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
  ip -n "$ns_a" link set "$if_a" up
  ip -n "$ns_b" link set "$if_b" up
  # The kernel would otherwise leave UDP checksums to an offload that af_packet and af_xdp
  # ports never perform.
  ip netns exec "$ns_a" ethtool -K "$if_a" tx off rx off >/dev/null 2>&1 || true
  ip netns exec "$ns_b" ethtool -K "$if_b" tx off rx off >/dev/null 2>&1 || true
}

mg_wireguard_go() {
  local ns=$1 ifname=$2
  MG_INTERFACES+=("$ifname")
  ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go "$ifname" \
    >"${MG_LOGDIR:-/tmp}/$ifname.wireguard-go.log" 2>&1 &
  local i
  for i in $(seq 1 50); do
    [ -S "/var/run/wireguard/$ifname.sock" ] && return 0
    sleep 0.1
  done
  mg_fail "wireguard-go did not create its UAPI socket for $ifname"
}
