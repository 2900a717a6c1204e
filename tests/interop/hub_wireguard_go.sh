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
#   │   fd00:100::1   │  │   fd00:100::2    │  │   fd00:100::3    │
#   └─────────────────┘  └──────────────────┘  └──────────────────┘
#
# usage: hub_wireguard_go.sh PATH/TO/meshgate WORKERS
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
meshgate=$1
workers=${2:-1}

ns_lan="" ns_gw="" ns_a="" ns_b="" ns_c=""
gw_key="" gw_pub=""
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

# start_client NAME NS TUNNEL_ADDRESS [TUNNEL_ADDRESS6]: wireguard-go with meshgate as its only
# peer.
start_client() {
  local name=$1 ns=$2 address=$3 address6=${4:-}
  client_key[$name]=$(wg genkey)
  client_pub[$name]=$(wg pubkey <<<"${client_key[$name]}")
  client_if[$name]="${MG_PREFIX}${name}"
  echo "${client_key[$name]}" >"$MG_LOGDIR/$name.key"
  mg_wg_client "$ns" "${client_if[$name]}" "$MG_LOGDIR/$name.key" "$gw_pub" \
    10.100.0.0/24,fd00:100::/64
  mg_in "$ns" ip addr add "$address/24" dev "${client_if[$name]}"
  if [ -n "$address6" ]; then
    mg_in "$ns" ip addr add "$address6/64" dev "${client_if[$name]}" nodad
  fi
  mg_in "$ns" ip link set "${client_if[$name]}" up
}

write_config() {
  cat >"$MG_LOGDIR/gw.yaml" <<YAML
interface:
  private_key: $gw_key
  listen_port: 51820
  addresses: [10.100.0.1/24, fd00:100::1/64]
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
    allowed_ips: [10.100.0.2/32, fd00:100::2/128]
    permissions: [peers]
  - name: b
    public_key: ${client_pub[b]}
    allowed_ips: [10.100.0.3/32, fd00:100::3/128]
    permissions: [peers]
YAML
}

show() { mg_show "$meshgate"; }


# Test that client A reaches the gateway's own tunnel address.
test_ping_gateway() { mg_in "$ns_a" ping -c 3 -i 0.3 -W 3 10.100.0.1 >/dev/null; }

# Test that A reaches B through the hub.
test_ping_a_to_b() { mg_in "$ns_a" ping -c 3 -i 0.3 -W 3 10.100.0.3 >/dev/null; }

# Test that the hub is a router on the path between peers: traceroute from A shows the
# gateway's tunnel address as hop 1 (time exceeded from meshgate itself), then B; over IPv4
# and IPv6.
test_traceroute_a_to_b() {
  local v4 v6
  v4=$(mg_in "$ns_a" traceroute -n -q 1 -w 2 -m 4 10.100.0.3 2>&1 || true)
  v6=$(mg_in "$ns_a" traceroute -6 -n -q 1 -w 2 -m 4 fd00:100::3 2>&1 || true)
  printf '%s\n%s\n' "$v4" "$v6" >"$MG_LOGDIR/traceroute.txt"
  grep -Eq '^ 1 +10\.100\.0\.1 ' <<<"$v4" && grep -Eq '^ 2 +10\.100\.0\.3 ' <<<"$v4" &&
    grep -Eq '^ 1 +fd00:100::1 ' <<<"$v6" && grep -Eq '^ 2 +fd00:100::3 ' <<<"$v6" ||
    { cat "$MG_LOGDIR/traceroute.txt" >&2; return 1; }
}

# Test path MTU discovery between peers. A's tunnel MTU is raised to 1500, above the
# gateway's 1420. A 1500-byte ping without DF reaches B (the hub splits it); one with DF gets
# "fragmentation needed" (mtu 1420) from the gateway, and then A's pings fit. Over IPv6 (no
# router fragments) the first 1500-byte ping gets "packet too big" (mtu 1420), and A's next
# ones go as fragments that fit.
test_pmtu_a_to_b() {
  local out status=0
  mg_in "$ns_a" ip link set "${client_if[a]}" mtu 1500
  mg_in "$ns_a" ping -c 2 -i 0.3 -W 3 -M dont -s 1472 10.100.0.3 >/dev/null || status=1
  out=$(mg_in "$ns_a" ping -c 1 -W 3 -M do -s 1472 10.100.0.3 2>&1 || true)
  mg_log "$(grep -m 1 "mtu" <<<"$out")"
  grep -q "mtu = 1420" <<<"$out" || status=1
  mg_in "$ns_a" ping -c 2 -i 0.3 -W 3 -M do -s 1392 10.100.0.3 >/dev/null || status=1
  out=$(mg_in "$ns_a" ping -6 -c 1 -W 3 -s 1452 fd00:100::3 2>&1 || true)
  mg_log "$(grep -m 1 "mtu" <<<"$out")"
  grep -q "mtu=1420" <<<"$out" || status=1
  mg_in "$ns_a" ping -6 -c 2 -i 0.3 -W 3 -s 1452 fd00:100::3 >/dev/null || status=1
  mg_in "$ns_a" ip link set "${client_if[a]}" mtu 1420
  mg_in "$ns_a" ip route flush cache
  mg_in "$ns_a" ip -6 route flush cache
  # With two workers, B's owner splits and A's owner answers: any worker's line will do.
  show | grep -Eq "^worker .*fragments made [1-9]" || status=1
  show | grep -Eq "^worker .*ICMP errors sent [1-9]" || status=1
  return "$status"
}

# Test that a destination no peer holds is refused at once: A's ping to an unassigned tunnel
# address gets "host unreachable" from the gateway (as from kernel WireGuard), not silence.
test_unreachable() {
  local out
  out=$(mg_in "$ns_a" ping -c 1 -W 3 10.100.0.99 2>&1 || true)
  mg_log "$(grep -m 1 "nreachable" <<<"$out")"
  grep -q "From 10.100.0.1 .*Destination Host Unreachable" <<<"$out"
}

# peer_counter NAME FIELD: one number from `meshgate show` ("rx" or "tx" bytes of a peer).
peer_bytes() {
  show | sed -n "s/^peer $1: .* $2 [0-9]* packets \([0-9]*\) bytes.*/\1/p"
}

# iperf_between FROM_NS TO_NS TO_ADDRESS: 5 s of TCP; prints the receiver's bits per second.
iperf_between() {
  local from=$1 to=$2 address=$3
  ip netns exec "$to" iperf3 -s -1 -B "$address" >/dev/null 2>&1 &
  local server=$!
  sleep 0.5
  local result
  result=$(ip netns exec "$from" iperf3 -c "$address" -t 5 -J 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' ||
    echo 0)
  wait "$server" 2>/dev/null || true
  echo "$result"
}

# Test iperf3 TCP from A to B and back through the hub, with counters that match: what
# meshgate received from A it sent to B, and the other way.
test_iperf() {
  local forward backward
  forward=$(iperf_between "$ns_a" "$ns_b" 10.100.0.3)
  backward=$(iperf_between "$ns_b" "$ns_a" 10.100.0.2)
  mg_log "iperf3 A->B $((forward / 1000000)) Mbit/s, B->A $((backward / 1000000)) Mbit/s"
  [ "$forward" -gt 0 ] && [ "$backward" -gt 0 ] || return 1
  show >"$MG_LOGDIR/show-after-iperf.txt"
  local a_rx b_tx b_rx a_tx
  a_rx=$(peer_bytes a rx); b_tx=$(peer_bytes b tx); b_rx=$(peer_bytes b rx); a_tx=$(peer_bytes a tx)
  mg_log "bytes: from A $a_rx, to B $b_tx, from B $b_rx, to A $a_tx"
  # Each direction carries data one way and ACKs the other; keepalives and pings add a
  # little. Forwarded bytes are within 10% of the bytes received from the other side.
  python3 - "$a_rx" "$b_tx" "$b_rx" "$a_tx" <<'PY'
import sys
a_rx, b_tx, b_rx, a_tx = map(int, sys.argv[1:])
ok = a_rx > 10**6 and b_rx > 10**6 and abs(a_rx - b_tx) <= 0.1 * a_rx and abs(b_rx - a_tx) <= 0.1 * b_rx
sys.exit(0 if ok else 1)
PY
}

# Test that A keeps working after its underlay address changes (roaming).
test_roaming() {
  # The new address arrives before the old one goes (as on a DHCP renumbering), so the route
  # and the neighbour entries survive. wireguard-go caches the source address it last sent
  # from; setting the endpoint again (what a client does on a network change) clears it, and
  # moving the listen port too makes the gateway see a wholly new source, as after a NAT
  # rebinding.
  ip netns exec "$ns_a" sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1
  mg_in "$ns_a" ip addr add 198.51.100.22/24 dev eth0
  mg_in "$ns_a" ip addr del 198.51.100.2/24 dev eth0
  mg_in "$ns_a" wg set "${client_if[a]}" listen-port 40222 peer "$gw_pub" endpoint 198.51.100.1:51820
  if ! mg_in "$ns_a" ping -c 3 -i 0.5 -W 5 10.100.0.3 >/dev/null; then
    show >&2
    return 1
  fi
  show | grep -q "^peer a: endpoint 198.51.100.22:40222,"
}

# Test that a client the gateway does not know never completes a handshake.
test_unconfigured_client() {
  start_client c "$ns_c" 10.100.0.4
  ! mg_in "$ns_c" ping -c 2 -W 2 10.100.0.1 >/dev/null 2>&1 || return 1
  show | grep -q "engine drop unknown_peer"
}

# Test that 10,000 random datagrams to the listen port are dropped and counted, while A's
# ping keeps working.
test_garbage_flood() {
  local before after
  before=$(show | sed -n 's/^  drop \(unknown_message_type\|bad_message_length\|unknown_receiver_index\|bad_mac1\) \([0-9]*\)/\2/p' | paste -sd+ | bc)
  ip netns exec "$ns_b" python3 - <<'PY' &
import os, random, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r = random.Random(4)
for i in range(10000):
    kind = i % 4
    if kind == 0:
        payload = os.urandom(r.randint(0, 1400))                           # anything at all
    elif kind == 1:
        payload = bytes([4, 0, 0, 0]) + os.urandom(r.randint(28, 200))    # data, unknown index
    elif kind == 2:
        payload = bytes([1, 0, 0, 0]) + os.urandom(144)                    # initiation, bad mac1
    else:
        payload = bytes([r.randint(5, 255), 0, 0, 0]) + os.urandom(60)    # unknown type
    s.sendto(payload, ("198.51.100.1", 51820))
PY
  local flood=$!
  mg_in "$ns_a" ping -c 5 -i 0.2 -W 3 10.100.0.1 >/dev/null || return 1
  wait "$flood"
  sleep 0.5
  show >"$MG_LOGDIR/show-after-flood.txt"
  after=$(sed -n 's/^  \(engine \)\{0,1\}drop \(unknown_message_type\|bad_message_length\|unknown_receiver_index\|bad_mac1\|bad_length\|unknown_type\|unknown_index\) \([0-9]*\)/\3/p' "$MG_LOGDIR/show-after-flood.txt" | paste -sd+ | bc)
  mg_log "garbage counted as drops: ${before:-0} -> $after"
  [ "$after" -ge 9000 ]
}

main() {
  setup_network
  gw_key=$(wg genkey)
  gw_pub=$(wg pubkey <<<"$gw_key")
  start_client a "$ns_a" 10.100.0.2 fd00:100::2
  start_client b "$ns_b" 10.100.0.3 fd00:100::3
  write_config
  mg_start_meshgate "$ns_gw" "$meshgate" "$workers"
  mg_check "A pings the gateway's tunnel address" test_ping_gateway
  mg_check "A pings B through the hub" test_ping_a_to_b
  mg_check "traceroute from A to B shows the hub (IPv4 and IPv6)" test_traceroute_a_to_b
  mg_check "a destination no peer holds gets host unreachable" test_unreachable
  mg_check "path MTU discovery between peers through the hub (IPv4 and IPv6)" test_pmtu_a_to_b
  mg_check "iperf3 TCP A->B and B->A, counters match" test_iperf
  mg_check "A roams to a new underlay address" test_roaming
  mg_check "an unconfigured client never gets a handshake" test_unconfigured_client
  mg_check "10,000 random datagrams are dropped and counted; ping keeps working" test_garbage_flood
  mg_report_meshgate "$meshgate"
}

mg_init
MG_LOGDIR=$(mktemp -d)
mg_run main
