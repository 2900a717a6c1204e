#include "dataplane/uplink.hpp"

#include <rte_ip.h>

#include <cstring>

#include "dataplane/checksum.hpp"
#include "dataplane/headers.hpp"
#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

enum class Class : std::uint8_t { inbound, neighbour, drop };

struct Verdict {
    Class kind;
    Drop reason = Drop::not_ip;
    // Inbound: the IP packet's length by its own header. The frame may hold more: Ethernet
    // pads frames to 60 bytes, and some links append trailers.
    std::uint32_t ip_length = 0;
};

constexpr std::uint32_t ethernet = sizeof(rte_ether_hdr);

Verdict ipv4_verdict(const std::uint8_t* ip, std::uint32_t length, const UplinkContext& context) {
    if (length < sizeof(rte_ipv4_hdr) || (ip[0] >> 4) != 4) {
        return {Class::drop, Drop::malformed_outer};
    }
    const std::uint32_t total = ip_packet_length(ip, length);
    if (total == 0) {  // inconsistent, or truncated
        return {Class::drop, Drop::malformed_outer};
    }
    // RFC 1812 5.2.2: a router verifies the header checksum, as the WAN side does. The NAT's
    // incremental updates would carry a damaged header on, still damaged, into the tunnel.
    if (!ipv4_header_checksum_ok(ip, (ip[0] & 0x0Fu) * 4)) {
        return {Class::drop, Drop::malformed_outer};
    }
    if (context.ipv4 == 0 || std::memcmp(ip + 16, &context.ipv4, 4) != 0) {
        return {Class::drop, Drop::not_for_us};
    }
    return {.kind = Class::inbound, .ip_length = total};
}

// Neighbour discovery goes to the control thread whatever its destination (solicitations
// travel to a multicast group); everything else must be addressed to the uplink.
Verdict ipv6_verdict(const std::uint8_t* ip, std::uint32_t length, const UplinkContext& context) {
    if (length < sizeof(rte_ipv6_hdr) || (ip[0] >> 4) != 6) {
        return {Class::drop, Drop::malformed_outer};
    }
    if (ip[6] == protocol_icmpv6 && length >= sizeof(rte_ipv6_hdr) + 4) {
        const std::uint8_t type = ip[sizeof(rte_ipv6_hdr)];
        if (type == icmpv6_neighbour_solicitation || type == icmpv6_neighbour_advertisement) {
            return {Class::neighbour};
        }
    }
    const std::uint32_t total = ip_packet_length(ip, length);
    if (total == 0) {  // truncated
        return {Class::drop, Drop::malformed_outer};
    }
    if (!context.has_ipv6 || std::memcmp(ip + 24, context.ipv6.data(), 16) != 0) {
        return {Class::drop, Drop::not_for_us};
    }
    return {.kind = Class::inbound, .ip_length = total};
}

Verdict verdict_for(const rte_mbuf* packet, const UplinkContext& context) {
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    if (length < ethernet) {
        return {Class::drop, Drop::malformed_outer};
    }
    const auto* frame = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    const auto* header = reinterpret_cast<const rte_ether_hdr*>(frame);
    switch (rte_be_to_cpu_16(header->ether_type)) {
        case RTE_ETHER_TYPE_ARP:
            return {Class::neighbour};
        case RTE_ETHER_TYPE_IPV4:
            return ipv4_verdict(frame + ethernet, length - ethernet, context);
        case RTE_ETHER_TYPE_IPV6:
            return ipv6_verdict(frame + ethernet, length - ethernet, context);
        default:
            return {Class::drop, Drop::not_ip};
    }
}

// Cuts the frame's bytes past the IP packet. False when they do not all sit in the last
// segment (rte_pktmbuf_trim's limit): a chained frame with a trailer longer than its last piece.
bool trim_to(rte_mbuf* packet, std::uint32_t ip_length) {
    const std::uint32_t length = rte_pktmbuf_pkt_len(packet);
    if (length <= ip_length) {
        return true;
    }
    const std::uint32_t excess = length - ip_length;
    return excess <= UINT16_MAX &&
           rte_pktmbuf_trim(packet, static_cast<std::uint16_t>(excess)) == 0;
}

}  // namespace

void classify_uplink(const Burst<>& received, const UplinkContext& context, UplinkClassified& out,
                     WorkerCounters& counters) {
    visit_prefetched(received, [&](rte_mbuf* packet) {
        counters.rx_packets++;
        counters.rx_bytes += rte_pktmbuf_pkt_len(packet);
        const Verdict verdict = verdict_for(packet, context);
        switch (verdict.kind) {
            case Class::inbound:
                rte_pktmbuf_adj(packet, ethernet);
                // The packet is what its IP header says: the bytes past it are not sealed
                // into the tunnel nor counted as the flow's.
                if (!trim_to(packet, verdict.ip_length)) {
                    drop_packet(packet, Drop::malformed_outer, counters);
                    break;
                }
                packet->l2_len = packet->l3_len = packet->l4_len = 0;
                out.inbound.push(packet);
                break;
            case Class::neighbour:
                packet->port = context.port;
                out.neighbour.push(packet);
                break;
            case Class::drop:
                drop_packet(packet, verdict.reason, counters);
                break;
        }
    });
}

}  // namespace meshgate::dataplane
