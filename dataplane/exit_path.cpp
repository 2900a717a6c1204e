#include "dataplane/exit_path.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

#include "dataplane/burst_scratch.hpp"
#include "dataplane/encap.hpp"
#include "dataplane/fragmentation.hpp"
#include "dataplane/icmp_error.hpp"
#include "dataplane/receive.hpp"
#include "dataplane/route.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint32_t expire_budget = 64;  // NAT entries visited per worker pass, at most
constexpr unsigned expire_records = 16;      // ended flows reported per pass, at most
constexpr std::uint16_t tcp_ip_v4 = 40;      // IPv4 + TCP headers without options
constexpr std::uint16_t tcp_ip_v6 = 60;
// Packets between a peer's exit lines being prefetched and being read: enough time for an
// L3 hit, and few enough loads in flight that none of them is dropped.
constexpr std::uint16_t exit_lines_ahead = 4;

std::uint8_t* ip_of(rte_mbuf* packet) {
    return rte_pktmbuf_mtod(packet, std::uint8_t*);
}

Drop drop_for(NatResult result) {
    switch (result) {
        case NatResult::no_flow:
            return Drop::nat_no_flow;
        case NatResult::table_full:
            return Drop::nat_table_full;
        case NatResult::ports_exhausted:
            return Drop::nat_ports_exhausted;
        case NatResult::unsupported_protocol:
            return Drop::nat_unsupported;
        case NatResult::fragment:
            return Drop::nat_fragment;
        case NatResult::translated:
        case NatResult::malformed:
            break;
    }
    return Drop::nat_malformed;
}

// The largest TCP segment that fits both the tunnel and the uplink (RFC 879's MSS: the MTU
// less the IP and TCP headers).
std::uint16_t max_mss(const SharedTables& shared, const ExitShared& exit, bool v6) {
    const std::uint16_t mtu = std::min(shared.tunnel_mtu, exit.mtu);
    return static_cast<std::uint16_t>(mtu - (v6 ? tcp_ip_v6 : tcp_ip_v4));
}

// The ICMP error about a peer's packet, from the gateway's tunnel address, queued for sealing
// back to the peer.
void answer_with_error(rte_mbuf* packet, IcmpError kind, Drop reason, Burst<>& replies,
                       WorkerContext& worker, std::uint32_t mtu, std::uint64_t now) {
    if (answer_sender_with_error(packet, kind, reason, worker, mtu, now)) {
        packet_meta(packet).stage = HandoffStage::encap;  // .peer is still the sender
        replies.push(packet);
    }
}

// True when the packet may go on to the uplink: it fits, or it may be split (IPv4 without DF),
// which translate_and_frame() does once NAT has translated it whole. Otherwise its sender gets
// "fragmentation needed" / "packet too big" through the tunnel.
bool fits_uplink(rte_mbuf* packet, Burst<>& replies, WorkerContext& worker, std::uint16_t mtu,
                 std::uint64_t now) {
    if (fits_or_may_split(packet, mtu)) {
        return true;
    }
    answer_with_error(packet, IcmpError::too_big, Drop::too_big, replies, worker, mtu, now);
    return false;
}

// Stage 1 of outbound: everything decided per packet before NAT. Keeps what may leave.
std::uint16_t check_outbound(Burst<>& packets, Burst<>& replies, WorkerContext& worker,
                             std::uint64_t now) {
    const SharedTables& shared = *worker.shared;
    const ExitShared& exit = *worker.exit->shared;
    const auto prefetch = [&exit](rte_mbuf* packet) {
        prefetch_exit_lines(exit, packet_meta(packet).peer);
    };
    return keep_if_ahead(packets, exit_lines_ahead, prefetch, [&](rte_mbuf* packet) {
        const PeerId peer = packet_meta(packet).peer;
        const IpAddress destination = destination_of(packet);
        if (exit.tunnel.is_local(destination)) {
            // An unassigned tunnel address: ours, not the internet's, and no peer's.
            answer_with_error(packet, IcmpError::unreachable, Drop::no_route, replies, worker, 0,
                              now);
            return false;
        }
        const ExitVerdict verdict = exit_verdict(shared.peers[peer].permissions,
                                                 Destination::uplink, destination, exit.local);
        if (verdict != ExitVerdict::allowed) {
            exit.counters[peer].count(verdict);
            drop_packet(packet,
                        verdict == ExitVerdict::refused_no_exit ? Drop::exit_not_permitted
                                                                : Drop::exit_local_refused,
                        worker.counters);
            return false;
        }
        if (!decrement_ttl(packet)) {
            answer_with_error(packet, IcmpError::time_exceeded, Drop::ttl_exceeded, replies, worker,
                              0, now);
            return false;
        }
        if (!exit.limits->allow_ingress(peer, now, rte_pktmbuf_data_len(packet))) {
            exit.counters[peer].rate_limited_ingress++;
            drop_packet(packet, Drop::rate_limited, worker.counters);
            return false;
        }
        if (!fits_uplink(packet, replies, worker, exit.mtu, now)) {
            return false;
        }
        if (exit.mss_clamp) {
            clamp_tcp_mss(ip_of(packet), rte_pktmbuf_data_len(packet),
                          max_mss(shared, exit, is_ipv6_packet(packet)));
        }
        return true;
    });
}

FlowRecord flow_record(const NatFlowRecord& flow, FlowEvent event, const WorkerContext& worker) {
    const ExitShared& exit = *worker.exit->shared;
    FlowRecord record;
    record.peer = worker.shared->peers[flow.peer].public_key;
    record.source = flow.inner_address;
    record.destination = flow.remote_address;
    const auto& uplink = flow.inner_address.is_v6 ? exit.ipv6 : exit.ipv4;
    record.translated = uplink.value_or(IpAddress{});
    record.source_port = flow.inner_port;
    record.destination_port = flow.remote_port;
    record.translated_port = flow.translated_port;
    record.event = event;
    record.protocol = flow.protocol;
    record.start_ns = exit.clock.to_ns(flow.created);
    if (event == FlowEvent::end) {
        record.end_ns = exit.clock.to_ns(flow.last_seen);
        record.bytes_out = flow.bytes_out;
        record.bytes_in = flow.bytes_in;
        record.packets_out = flow.packets_out;
        record.packets_in = flow.packets_in;
    }
    return record;
}

// The next hops' MACs as the control thread last published them: read once per burst.
struct NextHops {
    std::optional<rte_ether_addr> v4, v6;
    explicit NextHops(const NextHopMacs& macs) : v4(macs.get(false)), v6(macs.get(true)) {}
};

// Ethernet to the next hop of the packet's family. False: not resolved yet (or no headroom).
bool add_ethernet(rte_mbuf* packet, const ExitShared& exit, const NextHops& next_hops) {
    const bool v6 = is_ipv6_packet(packet);
    const std::optional<rte_ether_addr>& next_hop = v6 ? next_hops.v6 : next_hops.v4;
    if (!next_hop) {
        return false;
    }
    auto* ethernet =
        reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_prepend(packet, sizeof(rte_ether_hdr)));
    if (ethernet == nullptr) {
        return false;
    }
    ethernet->dst_addr = *next_hop;
    ethernet->src_addr = exit.uplink.mac;
    ethernet->ether_type = rte_cpu_to_be_16(v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    return true;
}

// A translated packet larger than the uplink's MTU (fits_uplink() let through only what may be
// split) goes out as IPv4 fragments, framed for the next hop into `pieces`, which is sent
// whenever it fills and after the burst. False: nothing left (dropped and counted).
bool split_for_uplink(rte_mbuf* packet, Burst<>& pieces, WorkerContext& worker,
                      const NextHops& next_hops) {
    ExitWorker& state = *worker.exit;
    const ExitShared& exit = *state.shared;
    rte_mbuf* fragments[max_fragments];
    unsigned count = 0;
    if (fragment_ipv4(packet, exit.mtu, fragments, count) != FragmentResult::fragmented) {
        drop_packet(packet, Drop::too_big, worker.counters);
        return false;
    }
    worker.counters.fragments_made += count;
    bool queued = false;
    for (unsigned i = 0; i < count; ++i) {
        if (!add_ethernet(fragments[i], exit, next_hops)) {
            drop_packet(fragments[i], Drop::uplink_unresolved, worker.counters);
            continue;
        }
        if (pieces.full()) {
            transmit_on(pieces, exit.port, state.tx_queue, worker.counters);
        }
        pieces.push(fragments[i]);
        queued = true;
    }
    return queued;
}

// Stage 2 of outbound: one NAT burst call, then the frames for the next hop.
void translate_and_frame(Burst<>& packets, WorkerContext& worker, std::uint64_t now) {
    ExitWorker& state = *worker.exit;
    const ExitShared& exit = *state.shared;
    std::uint8_t* ips[burst_size];
    std::uint32_t lengths[burst_size];
    PeerId peers[burst_size];
    for (std::uint16_t i = 0; i < packets.count; ++i) {
        ips[i] = ip_of(packets.packets[i]);
        lengths[i] = rte_pktmbuf_data_len(packets.packets[i]);
        peers[i] = packet_meta(packets.packets[i]).peer;
    }
    BurstScratch<NatOutcome, burst_size> outcome_slots;
    NatOutcome* const outcomes = outcome_slots.data();
    state.nat->translate_outbound_burst(ips, lengths, peers, packets.count, now, outcomes);
    const NextHops next_hops(exit.next_hop);
    Burst<> pieces;  // fragments of packets larger than the uplink's MTU, sent on their own
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < packets.count; ++i) {
        rte_mbuf* packet = packets.packets[i];
        const NatOutcome& outcome = outcomes[i];
        if (outcome.result != NatResult::translated) {
            drop_packet(packet, drop_for(outcome.result), worker.counters);
            continue;
        }
        if (outcome.created && state.flow_log) {
            state.flow_log->push(
                flow_record(state.nat->flow(outcome.flow), FlowEvent::start, worker));
        }
        ExitCounters& counters = exit.counters[peers[i]];
        if (lengths[i] > exit.mtu) [[unlikely]] {
            if (split_for_uplink(packet, pieces, worker, next_hops)) {
                counters.packets_out++;
                counters.bytes_out += lengths[i];
            }
            continue;
        }
        if (!add_ethernet(packet, exit, next_hops)) {
            drop_packet(packet, Drop::uplink_unresolved, worker.counters);
            continue;
        }
        counters.packets_out++;
        counters.bytes_out += lengths[i];
        packets.packets[kept++] = packet;
    }
    packets.count = kept;
    transmit_on(pieces, exit.port, state.tx_queue, worker.counters);
}

// The gateway's own answers from the uplink address (echo replies, ICMP errors), back out of
// the uplink to its next hop.
void send_from_uplink(Burst<>& answers, WorkerContext& worker) {
    ExitWorker& state = *worker.exit;
    const ExitShared& exit = *state.shared;
    const NextHops next_hops(exit.next_hop);
    keep_if(answers, [&](rte_mbuf* packet) {
        if (!add_ethernet(packet, exit, next_hops)) {
            drop_packet(packet, Drop::uplink_unresolved, worker.counters);
            return false;
        }
        return true;
    });
    transmit_on(answers, exit.port, state.tx_queue, worker.counters);
}

// An answer for a peer that is too big for the tunnel and may not be split (DF set, IPv6) gets
// "fragmentation needed" / "packet too big" with the tunnel's MTU, from the uplink address,
// quoting it as it came (before translation), so its sender's path MTU discovery works
// through the tunnel (RFC 1191, RFC 8201). Only for a packet a live flow would deliver; the
// rest NAT refuses and counts. encap splits the others. Cold: true only for oversized packets.
bool refused_too_big(rte_mbuf* packet, Burst<>& answers, WorkerContext& worker, std::uint64_t now) {
    ExitWorker& state = *worker.exit;
    const std::uint16_t mtu = worker.shared->tunnel_mtu;
    if (fits_or_may_split(packet, mtu) ||
        !state.nat->holds_inbound_flow(ip_of(packet), rte_pktmbuf_data_len(packet), now)) {
        return false;
    }
    const ExitShared& exit = *state.shared;
    if (become_icmp_error(packet, IcmpError::too_big, Drop::tunnel_too_big, worker, mtu, now,
                          is_ipv6_packet(packet) ? exit.ipv6 : exit.ipv4)) {
        answers.push(packet);
    }
    return true;
}

// Stage 2 of inbound: per translated packet, the peer it goes to and its egress limit.
std::uint16_t deliver_checks(Burst<>& packets, const PeerId* flow_peers, WorkerContext& worker,
                             std::uint64_t now) {
    const SharedTables& shared = *worker.shared;
    const ExitShared& exit = *worker.exit->shared;
    IpAddress destinations[burst_size];
    for (std::uint16_t i = 0; i < packets.count; ++i) {
        destinations[i] = destination_of(packets.packets[i]);
        // In by the time the loop below (and encap, for the slot) reads them.
        prefetch_exit_lines(exit, flow_peers[i]);
        rte_prefetch0(&shared.peers[flow_peers[i]]);
    }
    PeerId owners[burst_size];
    shared.allowed_ips->lookup_burst(destinations, owners, packets.count);
    HandoffBatch foreign(*shared.handoff, worker.counters);
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < packets.count; ++i) {
        rte_mbuf* packet = packets.packets[i];
        const PeerId peer = owners[i];
        // The allowed IPs decide who gets the answer, as for any packet sent into the tunnel;
        // they must still name the peer that opened the flow.
        if (peer != flow_peers[i]) {
            drop_packet(packet, Drop::nat_peer_mismatch, worker.counters);
            continue;
        }
        const std::uint32_t length = rte_pktmbuf_data_len(packet);
        if (!exit.limits->allow_egress(peer, now, length)) {
            exit.counters[peer].rate_limited_egress++;
            drop_packet(packet, Drop::rate_limited, worker.counters);
            continue;
        }
        if (exit.mss_clamp) {
            clamp_tcp_mss(ip_of(packet), length, max_mss(shared, exit, is_ipv6_packet(packet)));
        }
        prefetch_sending_lines(shared.peers[peer]);  // for encap, a stage ahead
        exit.counters[peer].packets_in++;
        exit.counters[peer].bytes_in += length;
        packet_meta(packet) = {peer, HandoffStage::encap};
        const unsigned owner = shared.peers[peer].owner;
        if (owner != worker.id) {
            // Only after a configuration change moved the address: the flow's peer owns its
            // flows. Its owner seals (it holds the send counter).
            foreign.add(owner, packet);
            continue;
        }
        packets.packets[kept++] = packet;
    }
    foreign.flush();
    packets.count = kept;
    return kept;
}

}  // namespace

std::uint16_t exit_outbound(Burst<>& packets, Burst<>& replies, WorkerContext& worker) {
    if (worker.exit == nullptr) {
        // No peer holds the destination and there is no uplink: the sender hears so at once,
        // as from kernel WireGuard for a packet no peer's allowed IPs take.
        const std::uint64_t now = rte_rdtsc();
        for (std::uint16_t i = 0; i < packets.count; ++i) {
            answer_with_error(packets.packets[i], IcmpError::unreachable, Drop::no_route, replies,
                              worker, 0, now);
        }
        packets.clear();
        return 0;
    }
    const std::uint64_t now = rte_rdtsc();
    if (check_outbound(packets, replies, worker, now) == 0) {
        return 0;
    }
    translate_and_frame(packets, worker, now);
    const std::uint16_t sent = packets.count;
    transmit_on(packets, worker.exit->shared->port, worker.exit->tx_queue, worker.counters);
    return sent;
}

void exit_inbound(Burst<>& packets, WorkerContext& worker) {
    if (packets.empty()) {
        return;
    }
    ExitWorker& state = *worker.exit;
    const std::uint64_t now = rte_rdtsc();
    Burst<> answers;  // from the uplink address itself: echo replies, ICMP errors
    std::uint8_t* ips[burst_size];
    std::uint32_t lengths[burst_size];
    std::uint32_t longest = 0;
    const auto gather = [&] {
        for (std::uint16_t i = 0; i < packets.count; ++i) {
            ips[i] = ip_of(packets.packets[i]);
            lengths[i] = rte_pktmbuf_data_len(packets.packets[i]);
            longest = std::max(longest, lengths[i]);
        }
    };
    gather();
    if (longest > worker.shared->tunnel_mtu) [[unlikely]] {
        keep_if(packets,
                [&](rte_mbuf* packet) { return !refused_too_big(packet, answers, worker, now); });
        gather();
    }
    BurstScratch<NatOutcome, burst_size> outcome_slots;
    NatOutcome* const outcomes = outcome_slots.data();
    state.nat->translate_inbound_burst(ips, lengths, packets.count, now, outcomes);
    PeerId flow_peers[burst_size];
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < packets.count; ++i) {
        rte_mbuf* packet = packets.packets[i];
        if (outcomes[i].result != NatResult::translated) {
            // NAT keys no flow by a request coming in: an echo request here is for the
            // gateway's uplink address itself (classify_uplink kept only those), answered as
            // a host answers pings. Asked only of what NAT refused.
            if (outcomes[i].result == NatResult::unsupported_protocol &&
                answer_echo_request(packet)) {
                state.uplink_echo_replies++;
                answers.push(packet);
                continue;
            }
            drop_packet(packet, drop_for(outcomes[i].result), worker.counters);
            continue;
        }
        flow_peers[kept] = outcomes[i].peer;
        packets.packets[kept++] = packet;
    }
    packets.count = kept;
    if (!answers.empty()) {
        send_from_uplink(answers, worker);
    }
    if (deliver_checks(packets, flow_peers, worker, now) == 0) {
        return;
    }
    // The uplink's next burst is what this worker seals next, as decap's open fetches the WAN's.
    crypto::PrefetchRange upcoming[burst_size];
    encap(packets, worker, {upcoming, lookahead_payloads(state.lookahead, upcoming)});
    transmit(packets, worker);
}

namespace {

// How one uplink packet is steered, and what its steering learnt of its datagram.
struct UplinkSteering {
    unsigned owner;                    // exit.workers: nobody's
    std::optional<FragmentKey> first;  // a first fragment: its held later ones follow it
    std::optional<FragmentKey> early;  // a later fragment whose first has not come yet
};

UplinkSteering steer_packet(const rte_mbuf* packet, const ExitShared& exit, FragmentMap& owners,
                            std::uint64_t now) {
    const NatSteering steering = nat_inbound_steering(rte_pktmbuf_mtod(packet, const std::uint8_t*),
                                                      rte_pktmbuf_data_len(packet));
    if (steering.port) {
        const unsigned owner = owner_of_port(exit.ports, exit.workers, *steering.port);
        if (steering.fragment) {
            // A first fragment: the rest of its datagram follows it to the same worker.
            owners.remember(*steering.fragment, owner, now);
        }
        return {owner, steering.fragment, std::nullopt};
    }
    if (steering.fragment) {
        if (const std::optional<std::uint32_t> owner = owners.find(*steering.fragment, now)) {
            return {*owner, std::nullopt, std::nullopt};
        }
        return {exit.workers, std::nullopt, steering.fragment};
    }
    return {exit.workers, std::nullopt, std::nullopt};
}

// Whether an uplink packet (at its IP header) may be a fragment: IPv4 with "more fragments" or
// an offset; IPv6 with a fragment header, or an extension header one may follow. The only
// worker steers nothing else, so this is all it reads of most packets.
bool may_be_fragment(const rte_mbuf* packet) {
    if (rte_pktmbuf_data_len(packet) < 8) {
        return false;
    }
    const auto* ip = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    if ((ip[0] >> 4) == 4) {
        return ((ip[6] << 8 | ip[7]) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0;
    }
    const std::uint8_t next = ip[6];
    return next == IPPROTO_FRAGMENT || next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
           next == IPPROTO_DSTOPTS;
}

void drop_expired_fragments(EarlyFragments& early, std::uint64_t now, WorkerCounters& counters) {
    rte_mbuf* expired[EarlyFragments::capacity];
    const unsigned count = early.expire(now, expired, EarlyFragments::capacity);
    for (unsigned i = 0; i < count; ++i) {
        drop_packet(expired[i], Drop::nat_fragment, counters);
    }
}

}  // namespace

unsigned uplink_owner(const rte_mbuf* packet, const ExitShared& exit, FragmentMap& fragment_owners,
                      std::uint64_t now) {
    return steer_packet(packet, exit, fragment_owners, now).owner;
}

void steer_inbound(Burst<>& inbound, unsigned self, const ExitShared& exit, Handoff& handoff,
                   FragmentSteering& fragments, Burst<>& released, WorkerCounters& counters) {
    // The only worker owns every port, and refuses what no port names: it steers fragments only.
    const bool alone = exit.workers == 1 && self == 0;
    // The clock is read once, and only when needed: most bursts hold no fragment.
    std::uint64_t now = 0;
    bool clock_read = false;
    const auto clock = [&now, &clock_read] {
        if (!clock_read) {
            now = rte_rdtsc();
            clock_read = true;
        }
        return now;
    };
    if (fragments.early.held() != 0) {
        drop_expired_fragments(fragments.early, clock(), counters);
    }
    HandoffBatch foreign(handoff, counters);
    // To `owner`: kept in place (true) when that is this thread, else handed over.
    const auto send = [&](rte_mbuf* packet, unsigned owner) {
        if (owner == self) {
            return true;
        }
        packet_meta(packet) = {no_peer, HandoffStage::uplink};
        foreign.add(owner, packet);
        return false;
    };
    keep_if(inbound, [&](rte_mbuf* packet) {
        if (alone && !may_be_fragment(packet)) {
            return true;
        }
        const std::uint64_t arrival = clock();
        const UplinkSteering steering = steer_packet(packet, exit, fragments.owners, arrival);
        if (steering.early) {
            if (rte_mbuf* oldest = fragments.early.hold(packet, *steering.early, arrival)) {
                drop_packet(oldest, Drop::nat_fragment, counters);
            }
            return false;
        }
        unsigned owner = steering.owner;
        if (owner == exit.workers) {
            if (self != exit.workers) {
                return true;  // nobody's port: refused (and counted) right here
            }
            owner = 0;
        }
        const bool keep = send(packet, owner);
        if (steering.first && fragments.early.held() != 0) {
            // Behind their first fragment: after it in the owner's ring, or after `inbound`.
            rte_mbuf* later[EarlyFragments::capacity];
            const unsigned count =
                fragments.early.release(*steering.first, later, EarlyFragments::capacity);
            for (unsigned i = 0; i < count; ++i) {
                if (!send(later[i], owner)) {
                    continue;
                }
                if (released.full()) {
                    drop_packet(later[i], Drop::nat_fragment, counters);
                } else {
                    released.push(later[i]);
                }
            }
        }
        return keep;
    });
}

unsigned receive_from_uplink(WorkerContext& worker) {
    ExitWorker& state = *worker.exit;
    const ExitShared& exit = *state.shared;
    Burst<> received = receive_ahead(exit.port, state.rx_queue, state.lookahead);
    if (received.count == 0) {
        return 0;
    }
    UplinkClassified out;
    classify_uplink(received, exit.uplink, out, worker.counters);
    prefetch_lookahead_headers(state.lookahead);
    send_to_control(out.neighbour, worker.shared->to_control, Drop::neighbour_ring_full,
                    worker.counters);
    Burst<> released;
    steer_inbound(out.inbound, worker.id, exit, *worker.shared->handoff, state.fragments, released,
                  worker.counters);
    exit_inbound(out.inbound, worker);
    if (!released.empty()) {
        exit_inbound(released, worker);
    }
    return received.count;
}

void exit_housekeeping(WorkerContext& worker, bool idle) {
    ExitWorker& state = *worker.exit;
    const std::uint64_t now = rte_rdtsc();
    if (state.fragments.early.held() != 0) {
        // Also when the uplink queue has gone quiet, so no fragment outstays its time.
        drop_expired_fragments(state.fragments.early, now, worker.counters);
    }
    // Visiting a fixed number of entries per pass cost the most when passes were busiest: at
    // 1420 B two entry lines per packet, 2.3% of exit_out's samples (perf, exit_out/1420/1000).
    const std::uint32_t budget = idle ? expire_budget : state.nat->sweep_due(now, expire_budget);
    // Budget 0 still hands over the flows retired outside the sweep.
    if (!state.flow_log) {
        state.nat->expire(now, budget, {});
        return;
    }
    // Built only for a flow log: the sixteen records are cleared on construction, 1.5 KB of
    // stores that every worker iteration paid (memset in exit_in's profile) for nothing.
    NatFlowRecord ended[expire_records];
    const unsigned count = state.nat->expire(now, budget, ended);
    for (unsigned i = 0; i < count; ++i) {
        state.flow_log->push(flow_record(ended[i], FlowEvent::end, worker));
    }
}

}  // namespace meshgate::dataplane
