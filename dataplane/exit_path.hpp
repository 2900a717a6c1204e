// The exit path (issue 5): peers with the `exit` permission leave through the uplink from
// the uplink's own address, and the answers come back to them through the tunnel.
//
//   route: no peer, not the gateway ─► exit_outbound
//       tunnel subnet? no_route ─► exit / lan verdict ─► TTL (time exceeded back) ─► ingress
//       rate limit ─► uplink MTU (too-big back) ─► MSS clamp ─► NAT out (one bulk lookup) ─►
//       Ethernet to the next hop ─► uplink TX
//
//   uplink RX ─► classify_uplink ─┬─ ARP / ND ───────────────────────► control thread's ring
//                                 └─ IP to the uplink address ─► steer by NAT port ─┐
//                      (later fragments by their first's; one that comes before it waits) ┤
//                      other worker's port slice: handoff ring (HandoffStage::uplink) ┤
//                                                                                     ▼
//       exit_inbound: NAT in (ICMP errors with their quotes) ─► allowed IPs must name the
//       flow's peer ─► egress rate limit ─► MSS clamp ─► encap ─► WAN TX
//
//   once per pass ─► exit_housekeeping: NAT expire (paced, bounded) ─► flow log queue;
//                    early fragments past their time dropped
//
// Each worker owns a slice of the uplink ports (split_port_range) and the NAT table for it.
// Outbound packets are already on their peer's owner worker (decap hands them there), so a
// flow lives on its peer's owner, and return traffic steered by port lands there too: per-peer
// counters and rate limiters keep a single writer. No allocation, no locks, no file I/O here.
#pragma once

#include <rte_cycles.h>
#include <rte_prefetch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "dataplane/burst.hpp"
#include "dataplane/context.hpp"
#include "dataplane/early_fragments.hpp"
#include "dataplane/exit_policy.hpp"
#include "dataplane/flow_log.hpp"
#include "dataplane/icmp_error.hpp"
#include "dataplane/nat.hpp"
#include "dataplane/rate_limit.hpp"
#include "dataplane/uplink.hpp"

namespace meshgate::dataplane {

// The uplink's next-hop MACs, one per family. Writer: the control thread (ARP/ND); readers:
// workers, one relaxed load per burst. A MAC fits one 64-bit word, so no seqlock is needed;
// bit 48 says "resolved". Once resolved it stays published while ARP refreshes it: a stale
// router MAC is better than a black hole for the second it takes to ask again.
class NextHopMacs {
  public:
    void publish(bool v6, const rte_ether_addr& mac) {
        std::uint64_t word = std::uint64_t{1} << 48;
        for (int i = 0; i < RTE_ETHER_ADDR_LEN; ++i) {
            word |= std::uint64_t{mac.addr_bytes[i]} << (8 * i);
        }
        (v6 ? v6_ : v4_).store(word, std::memory_order_release);
    }
    std::optional<rte_ether_addr> get(bool v6) const {
        const std::uint64_t word = (v6 ? v6_ : v4_).load(std::memory_order_acquire);
        if ((word >> 48) == 0) {
            return std::nullopt;
        }
        rte_ether_addr mac;
        for (int i = 0; i < RTE_ETHER_ADDR_LEN; ++i) {
            mac.addr_bytes[i] = static_cast<std::uint8_t>(word >> (8 * i));
        }
        return mac;
    }

  private:
    std::atomic<std::uint64_t> v4_{0};
    std::atomic<std::uint64_t> v6_{0};
};

// Shared by all workers. Built by the control thread before workers launch and read-only
// afterwards, except where a field says otherwise.
struct ExitShared {
    std::uint16_t port = 0;               // the uplink's DPDK port
    UplinkContext uplink;                 // its MAC and addresses, as classify_uplink compares them
    std::optional<IpAddress> ipv4, ipv6;  // masquerade sources (NAT's uplink addresses)
    std::uint16_t mtu = 1500;             // the uplink's IP MTU
    PortRange ports;                      // every worker's slices together
    unsigned workers = 1;
    LocalDestinations local;              // refused without `lan`
    LocalDestinations tunnel{{}, false};  // the tunnel subnets: never sent to the uplink
    bool mss_clamp = true;
    // Per peer, indexed by PeerId (SharedTables::peer_capacity entries). Writers: the peer's
    // owner worker (and the control thread configures the limits before launch).
    ExitCounters* counters = nullptr;
    PeerRateLimitTable* limits = nullptr;
    WallClock clock;        // flow log timestamps
    bool flow_log = false;  // workers fill their FlowLogQueue
    // ---- writer: control thread; readers: workers ----
    NextHopMacs next_hop;
};

// A peer's exit counters, and its rate limiter when it has one, a line apiece: every packet
// between the peer and the uplink touches them.
inline void prefetch_exit_lines(const ExitShared& exit, PeerId peer) {
    exit.limits->prefetch(peer);
    rte_prefetch0(&exit.counters[peer]);
}

// Datagrams whose first fragment a steering thread handed on, remembered at once (64 B each).
constexpr std::uint32_t fragment_steering_slots = 1024;

// What a thread steering an uplink RX queue knows of fragmented datagrams: which worker owns
// the datagrams whose first fragment it steered, and the later fragments that came before
// their first (early_fragments.hpp). Owned by that thread alone.
struct FragmentSteering {
    FragmentMap owners{fragment_steering_slots, fragment_lifetime_seconds* rte_get_tsc_hz()};
    EarlyFragments early{fragment_lifetime_seconds * rte_get_tsc_hz()};
};

// One worker's exit state, owned by its lcore (the control thread reads counters racily).
struct alignas(64) ExitWorker {
    const ExitShared* shared = nullptr;
    std::uint16_t rx_queue = 0;  // on the uplink port
    std::uint16_t tx_queue = 0;
    std::unique_ptr<NatTable> nat;           // this worker's slice of the ports
    std::unique_ptr<FlowLogQueue> flow_log;  // null: no flow log
    Burst<> lookahead;                       // the uplink queue's next burst (receive.hpp)
    // The control thread reads this racily (a monotonic statistic).
    std::uint64_t uplink_echo_replies = 0;  // pings to the uplink address, answered
    FragmentSteering fragments;             // of this worker's uplink queue (steer_inbound)

    ExitWorker() = default;
    ExitWorker(const ExitWorker&) = delete;
    ExitWorker& operator=(const ExitWorker&) = delete;
    ~ExitWorker() { release_lookahead(lookahead); }
};

// Route's hook: `packets` are authenticated inner packets of peers this worker owns whose
// destination is neither a peer nor the gateway. Transmits what may leave on the uplink and
// drops the rest (counted; per-peer refusals in ExitCounters). ICMP errors for the senders
// (time exceeded, too big, host unreachable: all of them when the gateway has no uplink) are
// appended to `replies` with packet_meta = {sender, encap}, for route's caller to seal.
// Returns the number of packets transmitted.
std::uint16_t exit_outbound(Burst<>& packets, Burst<>& replies, WorkerContext& worker);

// Receives one burst from this worker's uplink queue and processes it. Returns packets taken.
unsigned receive_from_uplink(WorkerContext& worker);

// Packets from the uplink (data at the IP header) whose NAT port this worker owns: from its
// own RX queue or handed over (HandoffStage::uplink). Seals and transmits to the peers.
void exit_inbound(Burst<>& packets, WorkerContext& worker);

// NAT expiry, once per worker pass; ended flows go to the flow log queue. A busy pass visits
// what NatTable::sweep_due() paces; an `idle` one (no packet came in) the whole per-pass
// bound, as its time is free.
void exit_housekeeping(WorkerContext& worker, bool idle);

// The worker whose port slice holds an inbound packet's NAT port; `exit.workers` when no
// worker owns it (not a NAT port, or nothing to translate: any worker may refuse it).
// A first fragment's owner is remembered in `fragment_owners` (the steering thread's own) for
// the datagram's later fragments, which carry no port.
unsigned uplink_owner(const rte_mbuf* packet, const ExitShared& exit, FragmentMap& fragment_owners,
                      std::uint64_t now);

// Hands the packets of `inbound` that belong to another worker than `self` to their owners
// (HandoffStage::uplink) and keeps the rest in place. The control thread, which owns no
// slice, passes self = exit.workers: unowned packets then go to worker 0, which counts them.
// A later fragment that came before its first is held in `fragments.early`; when the first
// comes, the held ones follow it: to its owner, or into `released` when that is `self`, to be
// processed after `inbound`. Held ones that outlive their time are dropped (nat_fragment).
void steer_inbound(Burst<>& inbound, unsigned self, const ExitShared& exit, Handoff& handoff,
                   FragmentSteering& fragments, Burst<>& released, WorkerCounters& counters);

}  // namespace meshgate::dataplane
