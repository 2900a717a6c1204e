#!/usr/bin/env bash
# meshgate's protocol engine (over a plain UDP socket) against wireguard-go, configured with
# `wg`: a WireGuard implementation nobody here wrote.
#
#   ┌──────────── $ns_engine ────────────┐            ┌──────────── $ns_wg ─────────────────┐
#   │ interop_engine_peer                │            │ wireguard-go ($wg_if) 10.200.0.2/24 │
#   │   UDP 198.51.100.1:51000           │            │   UDP 198.51.100.2:51820            │
#   │   tunnel address 10.200.0.1        │            │                                     │
#   │             veth mgE ──────────────┼────────────┼── veth mgW                          │
#   └────────────────────────────────────┘            └─────────────────────────────────────┘
#
# usage: engine_wireguard_go.sh PATH/TO/interop_engine_peer
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
harness=$1

ns_engine="" ns_wg="" wg_if="" engine_key="" engine_pub="" wg_key_file="" wg_pub=""

setup() {
  mg_netns ns_engine engine
  mg_netns ns_wg wg
  mg_veth "$ns_engine" mgE "$ns_wg" mgW
  ip -n "$ns_engine" addr add 198.51.100.1/24 dev mgE
  ip -n "$ns_wg" addr add 198.51.100.2/24 dev mgW

  engine_key=$(wg genkey)
  engine_pub=$(wg pubkey <<<"$engine_key")
  wg_key_file=$MG_LOGDIR/wg.key
  wg genkey >"$wg_key_file"
  wg_pub=$(wg pubkey <"$wg_key_file")
  wg_if="${MG_PREFIX}w"

  mg_wireguard_go "$ns_wg" "$wg_if"
  mg_in "$ns_wg" ip addr add 10.200.0.2/24 dev "$wg_if"
  mg_in "$ns_wg" ip link set "$wg_if" up
}

# configure_wg [PSK_FILE]: (re)configures wireguard-go's one peer, the engine, from scratch.
configure_wg() {
  local psk_args=()
  [ $# -gt 0 ] && psk_args=(preshared-key "$1")
  mg_in "$ns_wg" wg set "$wg_if" peer "$engine_pub" remove
  mg_in "$ns_wg" wg set "$wg_if" private-key "$wg_key_file" listen-port 51820 \
    peer "$engine_pub" allowed-ips 10.200.0.1/32 endpoint 198.51.100.1:51000 "${psk_args[@]}"
}

# engine ARGS...: runs the harness in its namespace with the common arguments. `exec`, so
# that in the background $! is the harness itself and `kill` reaches it; in the foreground,
# call it in a subshell.
engine() {
  exec ip netns exec "$ns_engine" "$harness" --key "$engine_key" --peer "$wg_pub" \
    --listen 198.51.100.1:51000 --address 10.200.0.1 --peer-address 10.200.0.2 "$@"
}

# stop PID: ends a background harness (it prints its counters on SIGTERM) and waits for it.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}


# Test that the engine can initiate, and decrypt wireguard-go's echo replies.
test_engine_initiates() {
  configure_wg
  (engine --endpoint 198.51.100.2:51820 --ping 3 --seconds 20)
}

# Test that wireguard-go can initiate: its ping is answered by the engine.
test_wireguard_go_initiates() {
  configure_wg
  engine --seconds 12 >"$MG_LOGDIR/serve.log" &
  local server=$! ping_ok=0
  sleep 0.5
  mg_in "$ns_wg" ping -c 3 -i 0.5 -W 5 10.200.0.1 >/dev/null && ping_ok=1
  stop "$server"
  [ "$ping_ok" -eq 1 ]
}

# Test both directions again with a preshared key on both sides.
test_preshared_key() {
  local psk
  psk=$(wg genpsk)
  echo "$psk" >"$MG_LOGDIR/psk"
  configure_wg "$MG_LOGDIR/psk"
  (engine --endpoint 198.51.100.2:51820 --psk "$psk" --ping 2 --seconds 20) || return 1
  configure_wg "$MG_LOGDIR/psk"
  engine --psk "$psk" --seconds 10 >"$MG_LOGDIR/serve-psk.log" &
  local server=$! ping_ok=0
  sleep 0.5
  mg_in "$ns_wg" ping -c 2 -i 0.5 -W 5 10.200.0.1 >/dev/null && ping_ok=1
  stop "$server"
  [ "$ping_ok" -eq 1 ]
}

# Test that handshakes forced mid-stream do not interrupt the pings.
test_rekey_mid_stream() {
  configure_wg
  local output handshakes
  # One initiation per REKEY_TIMEOUT (5 s) at most, so: handshakes at 0, 5 and 10 s.
  output=$(engine --endpoint 198.51.100.2:51820 --ping 12 --rekey-every 5 --seconds 30) || return 1
  echo "$output"
  handshakes=$(sed -n 's/.*handshakes=\([0-9]*\).*/\1/p' <<<"$output")
  [ "${handshakes:-0}" -ge 3 ]
}

# Test that under load the engine answers with a cookie reply, wireguard-go retries with
# mac2 (after REKEY_TIMEOUT, 5 s), and the handshake completes.
test_cookie_under_load() {
  configure_wg
  engine --under-load --seconds 25 >"$MG_LOGDIR/load.log" &
  local server=$! ping_ok=0 cookies
  sleep 0.5
  mg_in "$ns_wg" ping -c 1 -w 20 10.200.0.1 >/dev/null && ping_ok=1
  sleep 0.5
  stop "$server"
  cat "$MG_LOGDIR/load.log"
  cookies=$(sed -n 's/.*cookie_replies_sent=\([0-9]*\).*/\1/p' "$MG_LOGDIR/load.log")
  [ "$ping_ok" -eq 1 ] && [ "${cookies:-0}" -ge 1 ]
}

main() {
  setup
  mg_check "engine initiates, decrypts wireguard-go's echo replies" test_engine_initiates
  mg_check "wireguard-go initiates, its ping is answered" test_wireguard_go_initiates
  mg_check "both directions with a preshared key" test_preshared_key
  mg_check "forced rekey mid-stream, pings keep succeeding" test_rekey_mid_stream
  mg_check "cookie reply under load, wireguard-go retries with mac2" test_cookie_under_load
  if [ "$MG_FAILURES" -ne 0 ]; then
    mg_log "$MG_FAILURES interop check(s) failed; logs in $MG_LOGDIR"
    return 1
  fi
  mg_log "all engine interop checks passed"
}

mg_init
MG_LOGDIR=$(mktemp -d)
mg_run main
