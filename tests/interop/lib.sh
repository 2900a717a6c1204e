# Shared helpers for the interop tests and the demo (bash; source it). Every run builds its
# own little world of network namespaces with unique names and removes all of it when it
# ends: on success, on failure, on Ctrl-C or SIGTERM, and (for a run that was SIGKILLed) at
# the start of the next run. Traffic stays inside those namespaces.
#
#   mg_init                     unique prefix, state directory, traps; call first
#   mg_run FUNCTION             runs the test body so that a signal interrupts it at once
#   mg_netns VAR NAME           create namespace "$MG_PREFIX-NAME" with lo up; its name in VAR
#   mg_veth NS_A IF_A NS_B IF_B a veth pair with one end in each namespace, offloads off
#   mg_in NS CMD...             run CMD inside namespace NS, echoing it
#   mg_wireguard_go NS IFNAME   start wireguard-go for IFNAME in NS and wait for its UAPI socket
#   mg_wg_client NS IFNAME KEYFILE GATEWAY_PUB ALLOWED_IPS
#                               wireguard-go configured with wg, meshgate its only peer
#   mg_start_meshgate NS BINARY WORKERS
#                               run meshgate with $MG_LOGDIR/gw.yaml in NS, wait for its socket
#   mg_show BINARY              `meshgate show` of the gateway mg_start_meshgate started
#   mg_http_whoami NS           an HTTP server on port 8080 answering "caller-address port"
#   mg_report_meshgate BINARY   the gateway's counters; its log and status 1 if a check failed
#   mg_check NAME FUNCTION...   run one check, log PASS/FAIL, count failures in MG_FAILURES
#   mg_wait_for_socket PATH     wait up to 10 s for a unix socket to appear
#   mg_fail MESSAGE             print and exit 1 (cleanup still runs)

set -euo pipefail
umask 077  # key files the tests write are for root's eyes only, as wg insists

MG_PREFIX=""
MG_STATE=""
MG_BODY=""
MG_FAILURES=0
MG_STATE_ROOT=/tmp/meshgate-netns-tests

mg_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mg_fail() { mg_log "FAIL: $*"; exit 1; }

# Removes everything a state directory lists: processes in its namespaces, the namespaces,
# wireguard-go's UAPI sockets. Safe to call twice.
mg_cleanup_state() {
  local state=$1 ns ifname
  [ -d "$state" ] || return 0
  if [ -f "$state/namespaces" ]; then
    while read -r ns; do
      ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    done <"$state/namespaces"
    # Give them (meshgate shutting its ports and EAL down, above all) up to 3 s to exit.
    local i left
    for i in $(seq 1 30); do
      left=$(while read -r ns; do ip netns pids "$ns" 2>/dev/null; done <"$state/namespaces")
      [ -z "$left" ] && break
      sleep 0.1
    done
    while read -r ns; do
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    done <"$state/namespaces"
  fi
  if [ -f "$state/interfaces" ]; then
    while read -r ifname; do
      rm -f "/var/run/wireguard/$ifname.sock"
    done <"$state/interfaces"
  fi
  # A gateway that was killed outright cannot remove its DPDK runtime directory; its
  # --file-prefix is this run's prefix.
  rm -rf "/var/run/dpdk/$(basename "$state")"
  rm -rf "$state"
}

mg_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$MG_BODY" ]; then
    pkill -P "$MG_BODY" 2>/dev/null || true
    kill "$MG_BODY" 2>/dev/null || true
  fi
  mg_cleanup_state "$MG_STATE"
  exit "$status"
}

# Runs left behind by SIGKILL (a CI timeout, say) are cleaned by the next run.
mg_cleanup_stale() {
  local state owner
  for state in "$MG_STATE_ROOT"/*/; do
    [ -f "$state/owner" ] || continue
    owner=$(cat "$state/owner")
    if ! kill -0 "$owner" 2>/dev/null; then
      mg_log "removing namespaces left by dead run $owner"
      mg_cleanup_state "${state%/}"
    fi
  done
}

mg_init() {
  [ "$(id -u)" -eq 0 ] || mg_fail "network namespace tests need root"
  mkdir -p "$MG_STATE_ROOT"
  mg_cleanup_stale
  # Short: interface names derive from it and Linux allows 15 characters.
  MG_PREFIX="mg$(printf '%04x' $((RANDOM % 65536)))$$"
  MG_PREFIX=${MG_PREFIX:0:9}
  MG_STATE="$MG_STATE_ROOT/$MG_PREFIX"
  mkdir -p "$MG_STATE"
  echo $$ >"$MG_STATE/owner"
  : >"$MG_STATE/namespaces"
  : >"$MG_STATE/interfaces"
  trap mg_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# The body runs in the background and we `wait` for it: bash interrupts `wait` for a trapped
# signal at once, where it would otherwise let a foreground child (ping, say) swallow Ctrl-C.
mg_run() {
  "$@" &
  MG_BODY=$!
  local status=0
  wait "$MG_BODY" || status=$?
  MG_BODY=""
  return "$status"
}

mg_netns() {
  local -n result=$1
  local ns="$MG_PREFIX-$2"
  echo "$ns" >>"$MG_STATE/namespaces"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  result=$ns
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
  echo "$ifname" >>"$MG_STATE/interfaces"
  ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go "$ifname" \
    >"${MG_LOGDIR:-/tmp}/$ifname.wireguard-go.log" 2>&1 &
  local i
  for i in $(seq 1 50); do
    [ -S "/var/run/wireguard/$ifname.sock" ] && return 0
    sleep 0.1
  done
  mg_fail "wireguard-go did not create its UAPI socket for $ifname"
}

# The gateway is 198.51.100.1:51820 in every topology here. The persistent keepalive (as
# meshnet clients behind NAT use) makes the client handshake at once.
mg_wg_client() {
  local ns=$1 ifname=$2 key=$3 gateway=$4 allowed=$5
  mg_wireguard_go "$ns" "$ifname"
  mg_in "$ns" wg set "$ifname" private-key "$key" peer "$gateway" allowed-ips "$allowed" \
    endpoint 198.51.100.1:51820 persistent-keepalive 25
}

mg_start_meshgate() {
  local ns=$1 binary=$2 workers=$3
  # Workers may share a CPU with each other (2 cores here): lcores mapped explicitly.
  local lcores="0@0" w
  for w in $(seq 1 "$workers"); do lcores+=",$w@$(( w > 1 ? 1 : w ))"; done
  ip netns exec "$ns" "$binary" run -c "$MG_LOGDIR/gw.yaml" --socket "$MG_LOGDIR/mg.sock" \
    -- --lcores "$lcores" --file-prefix "$MG_PREFIX" --log-level error \
    >"$MG_LOGDIR/meshgate.log" 2>&1 &
  mg_wait_for_socket "$MG_LOGDIR/mg.sock" && return 0
  cat "$MG_LOGDIR/meshgate.log" >&2
  mg_fail "meshgate did not start"
}

mg_show() { "$1" show --socket "$MG_LOGDIR/mg.sock"; }

# Dual-stack (an IPv4 caller shows as its IPv4 address). Runs until its namespace goes.
mg_http_whoami() {
  local ns=$1
  ip netns exec "$ns" python3 - >"$MG_LOGDIR/http-$ns.log" 2>&1 <<'PY' &
import http.server, socket
class Caller(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = self.client_address[0].removeprefix("::ffff:")
        body = ("%s %d\n" % (host, self.client_address[1])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class DualStack(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
DualStack(("::", 8080), Caller).serve_forever()
PY
}

mg_report_meshgate() {
  mg_show "$1" || true
  if [ "$MG_FAILURES" -ne 0 ]; then
    mg_log "$MG_FAILURES check(s) failed; logs in $MG_LOGDIR"
    cat "$MG_LOGDIR/meshgate.log" >&2
    return 1
  fi
}

mg_check() {
  local name=$1
  shift
  if "$@"; then
    mg_log "PASS: $name"
  else
    mg_log "FAIL: $name"
    MG_FAILURES=$((MG_FAILURES + 1))
  fi
}

mg_wait_for_socket() {
  local i
  for i in $(seq 1 100); do
    [ -S "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
