#!/usr/bin/env bash
# meshgate as an exit node: wireguard-go clients send everything (0.0.0.0/0 and ::/0) into
# the tunnel, meshgate masquerades it to its uplink address, and the answers come back.
#
#   ┌──────────── $ns_wan (bridge br0) ───────────────────────────────┐
#   │   p0           p1           p2           p3           p4        │
#   └───┼────────────┼────────────┼────────────┼────────────┼─────────┘
#   ┌ $ns_gw ───┴──┐ ┌ $ns_a ───┐ ┌ $ns_b ───┐ ┌ $ns_c ───┐ ┌ $ns_d ───┐   wireguard-go,
#   │ meshgate     │ │ exit     │ │ exit,lan │ │ (none)   │ │ exit,    │   eth0 .2 .3 .4 .5
#   │ wan .1       │ │ tun .2   │ │ tun .3   │ │ tun .4   │ │ 20 Mbit/s│   tun 10.100.0.x,
#   │ up 203.0.113.1, 2001:db8:2::1 (MTU 1400)                          fd00:100::x
#   └──────┼───────┘
#   ┌ $ns_inet (router) ──────────────────────────────┐
#   │ r0 203.0.113.126/25, 2001:db8:2::fe/64          │
#   │ s0 203.0.113.129/25, 2001:db8:3::1/64 ─────────────► $ns_srv 203.0.113.200, 2001:db8:3::200
#   │ l0 192.168.77.1/24, fd00:77::1/64 ─────────────────►    HTTP (answers with the caller's
#   └─────────────────────────────────────────────────┘        address) and iperf3
#                                                         ► $ns_lan 192.168.77.10, fd00:77::10
#
# Only documentation (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) and private addresses,
# all inside namespaces this test creates and removes.
#
# usage: exit_wireguard_go.sh PATH/TO/meshgate WORKERS
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
meshgate=$1
workers=${2:-2}

ns_wan="" ns_gw="" ns_inet="" ns_srv="" ns_lan="" ns_a="" ns_b="" ns_c="" ns_d=""
gw_key="" gw_pub=""
declare -A client_key client_pub client_if client_ns

srv4=203.0.113.200
srv6=2001:db8:3::200
lan4=192.168.77.10
uplink4=203.0.113.1
uplink6=2001:db8:2::1

setup_network() {
  mg_netns ns_wan wan
  mg_netns ns_gw gw
  mg_netns ns_inet inet
  mg_netns ns_srv srv
  mg_netns ns_lan lan
  mg_netns ns_a a
  mg_netns ns_b b
  mg_netns ns_c c
  mg_netns ns_d d
  ip -n "$ns_wan" link add br0 type bridge
  ip -n "$ns_wan" link set br0 up
  local i=0 ns
  for ns in "$ns_gw" "$ns_a" "$ns_b" "$ns_c" "$ns_d"; do
    mg_veth "$ns" eth0 "$ns_wan" "p$i"
    ip -n "$ns_wan" link set "p$i" master br0
    [ "$i" -gt 0 ] && ip -n "$ns" addr add "198.51.100.$((i + 1))/25" dev eth0
    i=$((i + 1))
  done
  # DPDK owns the gateway's interfaces: the kernel there must neither answer nor route.
  ip netns exec "$ns_gw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  mg_veth "$ns_gw" up0 "$ns_inet" r0
  # The uplink link's MTU, as meshgate's config sets its own end: the router fragments (IPv4)
  # or answers "packet too big" (IPv6) for what is larger.
  ip -n "$ns_inet" link set r0 mtu 1400
  mg_veth "$ns_inet" s0 "$ns_srv" eth0
  mg_veth "$ns_inet" l0 "$ns_lan" eth0
  ip netns exec "$ns_inet" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$ns_inet" sysctl -qw net.ipv6.conf.all.forwarding=1
  ip -n "$ns_inet" addr add 203.0.113.126/25 dev r0
  ip -n "$ns_inet" addr add 2001:db8:2::fe/64 dev r0 nodad
  ip -n "$ns_inet" addr add 203.0.113.129/25 dev s0
  ip -n "$ns_inet" addr add 2001:db8:3::1/64 dev s0 nodad
  ip -n "$ns_inet" addr add 192.168.77.1/24 dev l0
  ip -n "$ns_inet" addr add fd00:77::1/64 dev l0 nodad
  ip -n "$ns_srv" addr add "$srv4/25" dev eth0
  ip -n "$ns_srv" addr add "$srv6/64" dev eth0 nodad
  ip -n "$ns_srv" route add default via 203.0.113.129
  ip -n "$ns_srv" -6 route add default via 2001:db8:3::1
  ip -n "$ns_lan" addr add "$lan4/24" dev eth0
  ip -n "$ns_lan" addr add fd00:77::10/64 dev eth0 nodad
  ip -n "$ns_lan" route add default via 192.168.77.1
  ip -n "$ns_lan" -6 route add default via fd00:77::1
}

# start_client NAME N: wireguard-go at 198.51.100.N with tunnel 10.100.0.N and fd00:100::N,
# routing everything into the tunnel. The gateway's endpoint stays on eth0: its /25 is more
# specific than the default route.
start_client() {
  local name=$1 n=$2 ns
  ns=${client_ns[$name]}
  client_key[$name]=$(wg genkey)
  client_pub[$name]=$(wg pubkey <<<"${client_key[$name]}")
  client_if[$name]="${MG_PREFIX}${name}"
  echo "${client_key[$name]}" >"$MG_LOGDIR/$name.key"
  mg_wg_client "$ns" "${client_if[$name]}" "$MG_LOGDIR/$name.key" "$gw_pub" 0.0.0.0/0,::/0
  mg_in "$ns" ip addr add "10.100.0.$n/24" dev "${client_if[$name]}"
  mg_in "$ns" ip addr add "fd00:100::$n/64" dev "${client_if[$name]}" nodad
  mg_in "$ns" ip link set "${client_if[$name]}" up
  mg_in "$ns" ip route add default dev "${client_if[$name]}"
  mg_in "$ns" ip -6 route add default dev "${client_if[$name]}"
}

# peer_yaml NAME N PERMISSIONS [EXTRA]
peer_yaml() {
  cat <<YAML
  - name: $1
    public_key: ${client_pub[$1]}
    allowed_ips: [10.100.0.$2/32, fd00:100::$2/128]
    permissions: [$3]
${4:-}
YAML
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
    address: 198.51.100.1/25
  - name: uplink
    device: net_af_packet1,iface=up0
    role: uplink
    address: $uplink4/25
    next_hop: 203.0.113.126
    address6: $uplink6/64
    next_hop6: 2001:db8:2::fe
    mtu: 1400
workers:
  lcores: [$(seq -s, 1 "$workers")]
  control_lcore: 0
  idle_sleep_us: 20
eal:
  hugepages: false
  memory_mb: 1024
exit:
  flow_log: $MG_LOGDIR/flows.jsonl
  nat:
    tcp_transitory_timeout: 5
    udp_timeout: 5
    icmp_timeout: 5
peers:
$(peer_yaml a 2 exit)
$(peer_yaml b 3 "exit, lan")
$(peer_yaml c 4 "")
$(peer_yaml d 5 exit "    rate_limit:
      ingress: {bytes_per_second: 2500000, burst_bytes: 100000}
      egress: {bytes_per_second: 2500000, burst_bytes: 100000}")
YAML
}

show() { mg_show "$meshgate"; }

# fetch CLIENT URL: what the HTTP server answered ("address port"), or nothing.
fetch() { ip netns exec "${client_ns[$1]}" curl -s -g --max-time 5 "$2" || true; }

# Test that every client's handshake completes (each pings the gateway's tunnel address).
test_handshakes() {
  local name
  for name in a b c d; do
    mg_in "${client_ns[$name]}" ping -c 2 -i 0.3 -W 5 10.100.0.1 >/dev/null || return 1
  done
}

# Test that the HTTP server sees the uplink address, over IPv4 and IPv6.
test_http_source() {
  local v4 v6
  v4=$(fetch a "http://$srv4:8080/")
  v6=$(fetch a "http://[$srv6]:8080/")
  mg_log "HTTP server saw: '$v4' and '$v6'"
  [ "${v4% *}" = "$uplink4" ] && [ "${v6% *}" = "$uplink6" ] || return 1
  echo "$v4" >"$MG_LOGDIR/http-v4.txt"
}

# Test ping (IPv4 and IPv6, ICMP echo identifier mapping) through the exit.
test_ping() {
  mg_in "$ns_a" ping -c 3 -i 0.3 -W 3 "$srv4" >/dev/null &&
    mg_in "$ns_a" ping -6 -c 3 -i 0.3 -W 3 "$srv6" >/dev/null
}

# Test that the uplink address answers ping from the internet side (IPv4 and IPv6).
test_uplink_ping() {
  mg_in "$ns_srv" ping -c 2 -i 0.3 -W 3 "$uplink4" >/dev/null &&
    mg_in "$ns_srv" ping -6 -c 2 -i 0.3 -W 3 "$uplink6" >/dev/null
}

# Test traceroute: hop 1 is the gateway (time exceeded from meshgate itself), hop 2 the
# router (its time exceeded translated back, quote and all), hop 3 the server (port
# unreachable, translated the same way).
test_traceroute() {
  local v4 v6
  v4=$(mg_in "$ns_a" traceroute -n -q 1 -w 2 -m 5 "$srv4" 2>&1 || true)
  v6=$(mg_in "$ns_a" traceroute -6 -n -q 1 -w 2 -m 5 "$srv6" 2>&1 || true)
  printf '%s\n%s\n' "$v4" "$v6" >"$MG_LOGDIR/traceroute.txt"
  grep -Eq '^ 1 +10\.100\.0\.1 ' <<<"$v4" && grep -Eq '^ 2 +203\.0\.113\.126 ' <<<"$v4" &&
    grep -Eq '^ 3 +203\.0\.113\.200 ' <<<"$v4" && grep -Eq '^ 1 +fd00:100::1 ' <<<"$v6" &&
    grep -Eq '^ 2 +2001:db8:2::fe ' <<<"$v6" && grep -Eq '^ 3 +2001:db8:3::200 ' <<<"$v6" ||
    { cat "$MG_LOGDIR/traceroute.txt" >&2; return 1; }
}

# Test path MTU discovery: the uplink's MTU is 1400, so a 1401-byte packet with DF set gets
# "fragmentation needed" (mtu 1400) from the gateway, and one of 1400 bytes goes through.
test_pmtu() {
  local out
  out=$(mg_in "$ns_a" ping -c 1 -W 3 -M do -s 1373 "$srv4" 2>&1 || true)
  mg_log "$(grep -m 1 "mtu" <<<"$out")"
  grep -q "mtu = 1400" <<<"$out" || return 1
  mg_in "$ns_a" ping -c 1 -W 3 -M do -s 1372 "$srv4" >/dev/null
}

# udp_size_probe CLIENT SERVER FAMILY: sends 3000-byte UDP datagrams (fragments allowed) from
# CLIENT to SERVER:9999, three of them 0.5 s apart (an IPv6 sender may first have to learn the
# path's MTU from "packet too big"). The server sends the first one it receives back whole.
# Prints the size of that one and the size of the answer CLIENT received ("3000 3000").
udp_size_probe() {
  local client=$1 server=$2 family=$3
  ip netns exec "$ns_srv" timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if sys.argv[1] == "6" else "0.0.0.0", 9999))
if sys.argv[1] != "6":
    s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: DF clear
s.settimeout(4)
first = None
try:
    for _ in range(3):
        data, sender = s.recvfrom(65535)
        first = first or len(data)
        s.sendto(data, sender)
        s.settimeout(1.5)  # the client asks again only while no answer reached it
except socket.timeout:
    pass
print(first or 0)' "$family" >"$MG_LOGDIR/udp-size-$family.txt" 2>/dev/null &
  local receiver=$!
  sleep 0.5
  local answer
  answer=$(ip netns exec "${client_ns[$client]}" python3 -c '
import socket, sys, time
v6 = sys.argv[2] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if not v6:
    s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: DF clear
s.settimeout(0.5)
for _ in range(3):
    s.sendto(b"x" * 3000, (sys.argv[1], 9999))
    try:
        print(len(s.recv(65535)))
        break
    except socket.timeout:
        pass
else:
    print(0)' "$server" "$family")
  wait "$receiver" || true
  echo "$(cat "$MG_LOGDIR/udp-size-$family.txt") $answer"
}

# Test datagrams larger than every MTU on the way (tunnel 1420, uplink 1400). Only a
# datagram's first fragment carries the ports (or echo identifier) NAT maps; its later
# fragments follow it (fragment_map.hpp).
# - A 3000-byte UDP datagram reaches the server whole. IPv4: the client's fragments of 1420
#   bytes are translated, then split again for the uplink. IPv6: the client learns the
#   uplink's MTU from "packet too big" through the tunnel, and fragments to fit.
# - The server's 3000-byte answer reaches the client whole. IPv4: DPDK's af_packet driver has
#   the kernel reassemble the fragments from the internet (PACKET_FANOUT_FLAG_DEFRAG), into
#   the uplink's 8 KiB frames; meshgate translates the datagram and splits it for the tunnel.
#   IPv6 fragments arrive as they are and are translated one by one.
# - 3000-byte pings come back, over IPv4 and IPv6. IPv6 routers do not fragment: the first
#   answer may meet "packet too big" at the router, later ones come in pieces that fit.
test_fragments() {
  local v4 v6
  # Forget the MTU of 1400 that test_pmtu taught the client for the server, so its fragments
  # are 1420 bytes (the tunnel's) and meshgate must split them again.
  mg_in "$ns_a" ip route flush cache
  v4=$(udp_size_probe a "$srv4" 4)
  v6=$(udp_size_probe a "$srv6" 6)
  mg_log "3000-byte UDP datagrams received whole (server, then client): IPv4 '$v4', IPv6 '$v6'"
  show | grep -E "^nat worker|^worker" >&2
  [ "$v4" = "3000 3000" ] && [ "$v6" = "3000 3000" ] &&
    mg_in "$ns_a" ping -c 4 -i 0.3 -W 3 -s 3000 "$srv4" >/dev/null &&
    mg_in "$ns_a" ping -6 -c 4 -i 0.3 -W 3 -s 3000 "$srv6" >/dev/null &&
    show | grep -Eq "^nat worker .*later fragments [1-9]" &&
    show | grep -Eq "^worker .*fragments made [1-9]"
}

# iperf3 CLIENT ARGS...: prints the receiver's bits per second (0 on failure).
iperf() {
  local name=$1
  shift
  ip netns exec "${client_ns[$name]}" iperf3 -J "$@" 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' ||
    echo 0
}

# Test iperf3 TCP both ways and UDP through the exit.
test_iperf() {
  local up down udp
  up=$(iperf a -c "$srv4" -t 3)
  down=$(iperf a -c "$srv4" -t 3 -R)
  udp=$(iperf a -c "$srv4" -t 3 -u -b 10M)
  mg_log "iperf3 TCP up $((up / 1000000)) Mbit/s, down $((down / 1000000)) Mbit/s, UDP $((udp / 1000000)) Mbit/s"
  [ "$up" -gt 1000000 ] && [ "$down" -gt 1000000 ] && [ "$udp" -gt 5000000 ]
}

# Test that a peer without `exit` reaches nothing outside, and is counted.
test_no_exit() {
  ! mg_in "$ns_c" ping -c 2 -W 2 "$srv4" >/dev/null 2>&1 || return 1
  [ -z "$(fetch c "http://$srv4:8080/")" ] || return 1
  show | grep -Eq "^exit c: .*refused no_exit [1-9]"
}

# Test the guest-wifi default: `exit` without `lan` cannot reach a private host behind the
# uplink; with `lan` it can.
test_lan() {
  ! mg_in "$ns_a" ping -c 2 -W 2 "$lan4" >/dev/null 2>&1 || return 1
  show | grep -Eq "^exit a: .*local_needs_lan [1-9]" || return 1
  mg_in "$ns_b" ping -c 2 -i 0.3 -W 3 "$lan4" >/dev/null
}

# Test the 20 Mbit/s limit: UDP offered at 40 Mbit/s arrives at 20 +-20% both ways.
test_rate_limit() {
  local up down
  up=$(iperf d -c "$srv4" -t 4 -u -b 40M)
  down=$(iperf d -c "$srv4" -t 4 -u -b 40M -R)
  mg_log "rate-limited peer: up $((up / 1000)) kbit/s, down $((down / 1000)) kbit/s"
  show | grep "^exit d:" >&2
  [ "$up" -ge 16000000 ] && [ "$up" -le 24000000 ] &&
    [ "$down" -ge 16000000 ] && [ "$down" -le 24000000 ]
}

# Test that the flow log names the HTTP flow: the client's key, its inner address, the
# server, and the very uplink port the server saw.
test_flow_log() {
  local seen port
  seen=$(cat "$MG_LOGDIR/http-v4.txt" 2>/dev/null) || return 1
  port=${seen#* }
  sleep 1  # the control thread writes each loop; give it one
  python3 - "$MG_LOGDIR/flows.jsonl" "${client_pub[a]}" "$srv4:8080" "$uplink4:$port" <<'PY'
import json, sys
path, peer, destination, nat = sys.argv[1:]
lines = [json.loads(line) for line in open(path)]
match = [r for r in lines if r["event"] == "start" and r["proto"] == "tcp" and r["peer"] == peer
         and r["dst"] == destination and r["nat"] == nat and r["src"].startswith("10.100.0.2:")]
print("flow log: %d lines, HTTP flow: %s" % (len(lines), match[0] if match else None),
      file=sys.stderr)
sys.exit(0 if match else 1)
PY
}

main() {
  setup_network
  gw_key=$(wg genkey)
  gw_pub=$(wg pubkey <<<"$gw_key")
  client_ns=([a]=$ns_a [b]=$ns_b [c]=$ns_c [d]=$ns_d)
  start_client a 2
  start_client b 3
  start_client c 4
  start_client d 5
  mg_http_whoami "$ns_srv"
  ip netns exec "$ns_srv" iperf3 -s >/dev/null 2>&1 &
  write_config
  mg_start_meshgate "$ns_gw" "$meshgate" "$workers"
  mg_check "every client completes a handshake" test_handshakes
  mg_check "the HTTP server sees the uplink address (IPv4 and IPv6)" test_http_source
  mg_check "ping through the exit (IPv4 and IPv6)" test_ping
  mg_check "the uplink address answers ping (IPv4 and IPv6)" test_uplink_ping
  mg_check "traceroute through the exit (IPv4 and IPv6)" test_traceroute
  mg_check "path MTU discovery: fragmentation needed from the gateway" test_pmtu
  mg_check "fragmented datagrams through the exit both ways (UDP and ping, IPv4 and IPv6)" \
    test_fragments
  mg_check "iperf3 TCP both directions and UDP" test_iperf
  mg_check "a peer without exit reaches nothing outside" test_no_exit
  mg_check "exit without lan cannot reach the lan host; with lan it can" test_lan
  mg_check "a peer limited to 20 Mbit/s measures within 20%" test_rate_limit
  mg_check "the flow log holds the HTTP flow with the peer's key and NAT port" test_flow_log
  mg_report_meshgate "$meshgate"
}

mg_init
MG_LOGDIR=$(mktemp -d)
mg_run main
