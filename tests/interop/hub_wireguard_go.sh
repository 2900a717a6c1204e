#!/usr/bin/env bash
# meshgate as a hub between wireguard-go clients, on DPDK af_packet ports over veths.
#
#          ┌──────────── $ns_lan (bridge br0) ────────────┐
#          │      p0             p1             p2        │
#          └──────┼──────────────┼──────────────┼─────────┘
#   ┌──── $ns_gw ─┴───┐  ┌─ $ns_a ─┴────────┐  ┌─ $ns_b ─┴────────┐
#   │ meshgate        │  │ wireguard-go     │  │ wireguard-go     │
#   │ wan 198.51.100.1│  │ eth 198.51.100.2 │  │ eth 198.51.100.3 │
#   │ tun 10.100.0.1  │  │ tun 10.100.0.2   │  │ tun 10.100.0.3   │
#   └─────────────────┘  └──────────────────┘  └──────────────────┘
#
# usage: hub_wireguard_go.sh PATH/TO/meshgate WORKERS
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
meshgate=$1
workers=${2:-1}

ns_lan="" ns_gw="" ns_a="" ns_b="" ns_c=""
gw_key="" gw_pub="" failures=0
declare -A client_key client_pub client_if

setup_network() {
  mg_netns ns_lan lan
  mg_netns ns_gw gw
  mg_netns ns_a a
  mg_netns ns_b b
  mg_netns ns_c c
  ip -n "$ns_lan" link add br0 type bridge
  ip -n "$ns_lan" link set br0 up
  local i=0 ns
  for ns in "$ns_gw" "$ns_a" "$ns_b" "$ns_c"; do
    mg_veth "$ns" eth0 "$ns_lan" "p$i"
    ip -n "$ns_lan" link set "p$i" master br0
    i=$((i + 1))
  done
  # The gateway's eth0 has no kernel address: DPDK owns it (the kernel would otherwise
  # answer ARP for it and send port-unreachable for 51820).
  ip -n "$ns_a" addr add 198.51.100.2/24 dev eth0
  ip -n "$ns_b" addr add 198.51.100.3/24 dev eth0
  ip -n "$ns_c" addr add 198.51.100.4/24 dev eth0
}

# start_client NAME NS TUNNEL_ADDRESS: wireguard-go with meshgate as its only peer; the
# persistent keepalive (as meshnet clients behind NAT use) makes it handshake at once.
start_client() {
  local name=$1 ns=$2 address=$3
  client_key[$name]=$(wg genkey)
  client_pub[$name]=$(wg pubkey <<<"${client_key[$name]}")
  client_if[$name]="${MG_PREFIX}${name}"
  echo "${client_key[$name]}" >"$MG_LOGDIR/$name.key"
  mg_wireguard_go "$ns" "${client_if[$name]}"
  mg_in "$ns" wg set "${client_if[$name]}" private-key "$MG_LOGDIR/$name.key" \
    peer "$gw_pub" allowed-ips 10.100.0.0/24 endpoint 198.51.100.1:51820 persistent-keepalive 25
  mg_in "$ns" ip addr add "$address/24" dev "${client_if[$name]}"
  mg_in "$ns" ip link set "${client_if[$name]}" up
}

write_config() {
  cat >"$MG_LOGDIR/gw.yaml" <<YAML
interface:
  private_key: $gw_key
  listen_port: 51820
  addresses: [10.100.0.1/24]
ports:
  - name: wan
    device: net_af_packet0,iface=eth0
    role: wan
    address: 198.51.100.1/24
workers:
  lcores: [$(seq -s, 1 "$workers")]
  control_lcore: 0
  idle_sleep_us: 20
eal:
  hugepages: false
  memory_mb: 1024
peers:
  - name: a
    public_key: ${client_pub[a]}
    allowed_ips: [10.100.0.2/32]
    permissions: [peers]
  - name: b
    public_key: ${client_pub[b]}
    allowed_ips: [10.100.0.3/32]
    permissions: [peers]
YAML
}

start_gateway() {
  # Workers may share a CPU with each other (2 cores here): lcores mapped explicitly.
  local lcores="0@0"
  local w
  for w in $(seq 1 "$workers"); do lcores+=",$w@$(( w > 1 ? 1 : w ))"; done
  ip netns exec "$ns_gw" "$meshgate" run -c "$MG_LOGDIR/gw.yaml" --socket "$MG_LOGDIR/mg.sock" \
    -- --lcores "$lcores" --file-prefix "$MG_PREFIX" --log-level error \
    >"$MG_LOGDIR/meshgate.log" 2>&1 &
  local i
  for i in $(seq 1 100); do
    [ -S "$MG_LOGDIR/mg.sock" ] && return 0
    sleep 0.1
  done
  cat "$MG_LOGDIR/meshgate.log" >&2
  mg_fail "meshgate did not start"
}

show() { "$meshgate" show --socket "$MG_LOGDIR/mg.sock"; }

check() {
  local name=$1
  shift
  if "$@"; then
    mg_log "PASS: $name"
  else
    mg_log "FAIL: $name"
    failures=$((failures + 1))
  fi
}

# Test that client A reaches the gateway's own tunnel address.
test_ping_gateway() { mg_in "$ns_a" ping -c 3 -i 0.3 -W 3 10.100.0.1 >/dev/null; }

# Test that A reaches B through the hub.
test_ping_a_to_b() { mg_in "$ns_a" ping -c 3 -i 0.3 -W 3 10.100.0.3 >/dev/null; }

main() {
  setup_network
  gw_key=$(wg genkey)
  gw_pub=$(wg pubkey <<<"$gw_key")
  start_client a "$ns_a" 10.100.0.2
  start_client b "$ns_b" 10.100.0.3
  write_config
  start_gateway
  check "A pings the gateway's tunnel address" test_ping_gateway
  check "A pings B through the hub" test_ping_a_to_b
  show || true
  if [ "$failures" -ne 0 ]; then
    mg_log "$failures check(s) failed; logs in $MG_LOGDIR"
    cat "$MG_LOGDIR/meshgate.log" >&2
    return 1
  fi
}

mg_init
MG_LOGDIR=$(mktemp -d)
mg_run main
