// Per-worker counters and the one list of drop reasons.
//
// Every packet a worker discards is counted under exactly one reason, named after the
// packet's fault, so an operator can tell a flood of garbage from a misconfigured peer.
// Ownership: each WorkerCounters is written only by its worker lcore (plain increments, no
// atomics); readers (`meshgate show`, metrics) on the control thread read the 64-bit fields
// racily, which is fine for monotonic statistics on x86-64 (aligned 64-bit loads are atomic).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace meshgate::dataplane {

// X(name, help): the reason a packet was dropped.
#define MESHGATE_DROP_REASONS(X)                                                               \
    X(not_ip, "Ethernet frame that is neither IPv4, IPv6 nor ARP")                             \
    X(malformed_outer, "truncated or inconsistent outer Ethernet/IP/UDP headers")              \
    X(not_for_us, "IP packet not addressed to a gateway address or port")                      \
    X(unknown_message_type, "UDP to the listen port that is not a WireGuard message")          \
    X(bad_message_length, "WireGuard message shorter or longer than its type allows")          \
    X(handshake_ring_full, "handshake message dropped: control thread's ring full")            \
    X(neighbour_ring_full, "ARP/ND packet dropped: control thread's ring full")                \
    X(unknown_receiver_index, "transport data for a receiver index with no session")           \
    X(handoff_congested, "owner worker's handoff ring full")                                   \
    X(keypair_expired, "transport data on a keypair past REJECT_AFTER_TIME or _MESSAGES")      \
    X(decrypt_failed, "Poly1305 tag did not verify")                                           \
    X(replayed_counter, "counter already seen or behind the replay window")                    \
    X(inner_malformed, "decrypted packet is not a sane IPv4/IPv6 packet")                      \
    X(inner_source_not_allowed, "inner source address outside the peer's allowed IPs")         \
    X(no_route, "destination: no peer, gateway address or uplink (ICMP unreachable sent)")     \
    X(ttl_exceeded, "inner packet's TTL or hop limit ran out here (ICMP time exceeded sent)")  \
    X(endpoint_unknown, "peer has a session but no known endpoint to send to")                 \
    X(policy_refused, "peer lacks the permission for this destination")                        \
    X(no_session_queue_full, "packet for a peer without a session: staging queue full")        \
    X(tx_failed, "transmit queue full, or no room in the buffer for the headers and tag")      \
    X(exit_not_permitted, "uplink destination, and the peer lacks the exit permission")        \
    X(exit_local_refused, "local (private, link-local, attached) destination without lan")     \
    X(rate_limited, "over the peer's configured rate limit (exit traffic)")                    \
    X(tunnel_too_big, "packet for a peer over the tunnel MTU, DF or IPv6 (ICMP too-big sent)") \
    X(tunnel_too_many_fragments, "packet for a peer that would take too many fragments")       \
    X(too_big, "inner packet larger than the uplink MTU (ICMP too-big sent if DF/IPv6)")       \
    X(uplink_unresolved, "uplink next hop's MAC address not resolved yet")                     \
    X(nat_no_flow, "uplink packet that matches no live NAT flow")                              \
    X(nat_table_full, "new exit flow refused: this worker's NAT table is full")                \
    X(nat_ports_exhausted, "new exit flow refused: no free port in this worker's range")       \
    X(nat_unsupported, "exit packet NAT cannot translate (protocol, ICMP type, family)")       \
    X(nat_fragment, "later fragment whose first fragment was not translated")                  \
    X(nat_malformed, "truncated or inconsistent packet seen by NAT")                           \
    X(nat_peer_mismatch, "return traffic whose destination no longer routes to its peer")

enum class Drop : std::uint8_t {
#define MESHGATE_DROP_ENUM(name, help) name,
    MESHGATE_DROP_REASONS(MESHGATE_DROP_ENUM)
#undef MESHGATE_DROP_ENUM
};

inline constexpr std::size_t drop_reason_count = 0
#define MESHGATE_DROP_COUNT(name, help) +1
    MESHGATE_DROP_REASONS(MESHGATE_DROP_COUNT)
#undef MESHGATE_DROP_COUNT
    ;

std::string_view drop_name(Drop reason);
std::string_view drop_help(Drop reason);

struct alignas(64) WorkerCounters {
    std::uint64_t rx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t to_control = 0;      // handshake and ARP/ND packets handed to the control thread
    std::uint64_t handed_off = 0;      // packets passed to another worker (the peer's owner)
    std::uint64_t fragments_made = 0;  // IPv4 fragments of packets too big for the tunnel
    std::uint64_t icmp_errors_sent = 0;        // the gateway's own (route.hpp)
    std::uint64_t icmp_errors_suppressed = 0;  // over the worker's ICMP rate: dropped unanswered
    std::array<std::uint64_t, drop_reason_count> drops{};

    void count_drop(Drop reason, std::uint64_t packets = 1) {
        drops[static_cast<std::size_t>(reason)] += packets;
    }
    std::uint64_t dropped(Drop reason) const { return drops[static_cast<std::size_t>(reason)]; }
    std::uint64_t total_drops() const;
};

}  // namespace meshgate::dataplane
