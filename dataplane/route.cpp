#include "dataplane/route.hpp"

#include <rte_cycles.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

#include <cstring>

#include "dataplane/encap.hpp"
#include "dataplane/exit_path.hpp"
#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint8_t reply_ttl = 64;

}  // namespace

namespace {

bool answer_echo_v4(rte_mbuf* packet) {
    auto* ip = rte_pktmbuf_mtod(packet, rte_ipv4_hdr*);
    std::uint32_t header = rte_ipv4_hdr_len(ip);
    std::uint32_t total = rte_be_to_cpu_16(ip->total_length);
    if (ip->next_proto_id != protocol_icmp || total < header + sizeof(rte_icmp_hdr) ||
        (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) != 0) {
        return false;
    }
    auto* icmp = reinterpret_cast<rte_icmp_hdr*>(reinterpret_cast<std::uint8_t*>(ip) + header);
    if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0) {
        return false;
    }
    const rte_be32_t source = ip->src_addr;  // packed fields: no std::swap
    ip->src_addr = ip->dst_addr;
    ip->dst_addr = source;
    ip->time_to_live = reply_ttl;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
    icmp->icmp_cksum = 0;
    icmp->icmp_cksum = static_cast<std::uint16_t>(~rte_raw_cksum(icmp, total - header));
    return true;
}

bool answer_echo_v6(rte_mbuf* packet) {
    auto* ip = rte_pktmbuf_mtod(packet, rte_ipv6_hdr*);
    std::uint32_t payload = rte_be_to_cpu_16(ip->payload_len);
    if (ip->proto != protocol_icmpv6 || payload < 8) {
        return false;
    }
    auto* icmp = reinterpret_cast<std::uint8_t*>(ip + 1);
    if (icmp[0] != icmpv6_echo_request || icmp[1] != 0) {
        return false;
    }
    std::uint8_t swap[16];
    std::memcpy(swap, ip->src_addr, 16);
    std::memcpy(ip->src_addr, ip->dst_addr, 16);
    std::memcpy(ip->dst_addr, swap, 16);
    ip->hop_limits = reply_ttl;
    icmp[0] = icmpv6_echo_reply;
    icmp[2] = icmp[3] = 0;
    std::uint16_t checksum = rte_ipv6_udptcp_cksum(ip, icmp);
    std::memcpy(icmp + 2, &checksum, 2);
    return true;
}

}  // namespace

bool answer_echo_request(rte_mbuf* packet) {
    return is_ipv6_packet(packet) ? answer_echo_v6(packet) : answer_echo_v4(packet);
}

bool answer_echo(rte_mbuf* packet, const IpAddress& destination, const GatewayAddresses& self) {
    const auto& own = destination.is_v6 ? self.tunnel_ipv6 : self.tunnel_ipv4;
    if (!own || !(*own == destination)) {
        return false;
    }
    return answer_echo_request(packet);
}

bool become_icmp_error(rte_mbuf* packet, IcmpError kind, Drop reason, WorkerContext& worker,
                       std::uint32_t mtu, std::uint64_t now,
                       const std::optional<IpAddress>& source) {
    worker.counters.count_drop(reason);
    if (!worker.icmp_errors.allow(now)) {
        worker.counters.icmp_errors_suppressed++;
        rte_pktmbuf_free(packet);
        return false;
    }
    if (!make_icmp_error(packet, kind, mtu, source)) {
        rte_pktmbuf_free(packet);
        return false;
    }
    worker.counters.icmp_errors_sent++;
    return true;
}

bool answer_sender_with_error(rte_mbuf* packet, IcmpError kind, Drop reason, WorkerContext& worker,
                              std::uint32_t mtu, std::uint64_t now) {
    const GatewayAddresses& self = worker.shared->addresses;
    return become_icmp_error(packet, kind, reason, worker, mtu, now,
                             is_ipv6_packet(packet) ? self.tunnel_ipv6 : self.tunnel_ipv4);
}

namespace {

// A packet for another peer that a router would not forward: its TTL has run out, or it is
// larger than the tunnel's MTU and may not be split (encap splits the others). Its sender gets
// time exceeded / fragmentation needed (with the tunnel's MTU) from the gateway's tunnel
// address, as from any router on the path: traceroute and path MTU discovery between peers
// work through the hub. True: the packet is now that error; false: it was dropped (counted).
// Cold: the caller asks only when the TTL check failed or the packet is too big.
[[gnu::noinline]] bool refuse_to_forward(rte_mbuf* packet, bool ttl_expired,
                                         WorkerContext& worker) {
    const std::uint64_t now = rte_rdtsc();
    if (ttl_expired) {
        return answer_sender_with_error(packet, IcmpError::time_exceeded, Drop::ttl_exceeded,
                                        worker, 0, now);
    }
    return answer_sender_with_error(packet, IcmpError::too_big, Drop::tunnel_too_big, worker,
                                    worker.shared->tunnel_mtu, now);
}

}  // namespace

namespace {

// Every destination of the burst in `owners` (no_peer: none), and which packets are echo
// requests to the gateway itself (answered here, in place; route sends them back to their
// sender whatever the lookup says). An all-IPv4 burst, the usual one,
// goes straight to the IPv4 table with its addresses as they are read; IpAddress values are
// built only for a burst with IPv6 in it.
void look_up_destinations(Burst<>& inner, const SharedTables& shared, PeerId* owners, bool* echo) {
    const std::optional<IpAddress>& tunnel_v4 = shared.addresses.tunnel_ipv4;
    const std::uint32_t own_v4 = tunnel_v4 ? tunnel_v4->v4_network_order() : 0;
    std::uint32_t v4[burst_size];
    bool all_v4 = true;
    for (std::uint16_t i = 0; i < inner.count; ++i) {
        rte_mbuf* packet = inner.packets[i];
        if (is_ipv6_packet(packet)) [[unlikely]] {
            all_v4 = false;
            echo[i] = answer_echo(packet, destination_of(packet), shared.addresses);
            continue;
        }
        const std::uint32_t destination = rte_pktmbuf_mtod(packet, const rte_ipv4_hdr*)->dst_addr;
        v4[i] = rte_be_to_cpu_32(destination);
        echo[i] = own_v4 != 0 && destination == own_v4 && answer_echo_request(packet);
    }
    if (all_v4) [[likely]] {
        shared.allowed_ips->lookup_v4(v4, owners, inner.count);
        return;
    }
    IpAddress destinations[burst_size];
    for (std::uint16_t i = 0; i < inner.count; ++i) {
        destinations[i] = destination_of(inner.packets[i]);
    }
    shared.allowed_ips->lookup_burst(destinations, owners, inner.count);
}

}  // namespace

std::uint16_t route(Burst<>& inner, WorkerContext& worker) {
    const SharedTables& shared = *worker.shared;
    PeerId owners[burst_size];
    bool echo[burst_size];
    look_up_destinations(inner, shared, owners, echo);
    // The destinations' slots (permissions, owner, keypairs): with many peers each is a miss,
    // read below for every packet, and again by encap.
    for (std::uint16_t i = 0; i < inner.count; ++i) {
        if (owners[i] != no_peer) {
            rte_prefetch0(&shared.peers[owners[i]]);
        }
    }

    Burst<> to_uplink;
    HandoffBatch foreign(*shared.handoff, worker.counters);
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < inner.count; ++i) {
        rte_mbuf* packet = inner.packets[i];
        const PeerId source = packet_meta(packet).peer;
        PeerId destination = owners[i];
        if (echo[i]) {
            destination = source;
        } else {
            if (destination == no_peer) {
                to_uplink.push(packet);  // exit_outbound drops it when there is no uplink
                continue;
            }
            const std::uint8_t both =
                shared.peers[source].permissions & shared.peers[destination].permissions;
            if ((both & permission_peers) == 0) {
                drop_packet(packet, Drop::policy_refused, worker.counters);
                continue;
            }
            const bool ttl_expired = !decrement_ttl(packet);
            if (ttl_expired || !fits_or_may_split(packet, shared.tunnel_mtu)) [[unlikely]] {
                if (!refuse_to_forward(packet, ttl_expired, worker)) {
                    continue;  // counted, and freed
                }
                destination = source;  // the error goes back to the sender
            }
        }
        packet_meta(packet) = {destination, HandoffStage::encap};
        const PeerSlot& slot = shared.peers[destination];
        if (slot.owner != worker.id) {
            foreign.add(slot.owner, packet);
            continue;
        }
        prefetch_sending_lines(slot);  // encap's next read: the whole route pass ahead
        inner.packets[kept++] = packet;
    }
    foreign.flush();
    inner.count = kept;
    if (!to_uplink.empty()) {
        exit_outbound(to_uplink, inner, worker);  // ICMP errors for the senders join `inner`
    }
    return inner.count;
}

}  // namespace meshgate::dataplane
