#include "dataplane/classify.hpp"

#include <rte_icmp.h>
#include <rte_ip.h>

#include <cstring>

#include "dataplane/checksum.hpp"
#include "dataplane/headers.hpp"
#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

using Class = FrameClass;
using Verdict = FrameVerdict;

bool addressed_to_us(const rte_mbuf* packet, const ClassifyContext& context) {
    auto* ethernet = rte_pktmbuf_mtod(packet, const rte_ether_hdr*);
    if (ethernet->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        auto* ip = rte_pktmbuf_mtod_offset(packet, const rte_ipv4_hdr*, packet->l2_len);
        return context.ipv4 != 0 && ip->dst_addr == context.ipv4;
    }
    auto* ip = rte_pktmbuf_mtod_offset(packet, const rte_ipv6_hdr*, packet->l2_len);
    return context.has_ipv6 && std::memcmp(ip->dst_addr, context.ipv6.data(), 16) == 0;
}

// The first four bytes are the type as little-endian u32: the three reserved bytes must be
// zero, so a single comparison checks both.
Verdict wireguard_verdict(rte_mbuf* packet) {
    std::uint16_t length = udp_payload_length(packet);
    if (length < 4) {
        return {Class::drop, Drop::unknown_message_type};
    }
    const std::uint8_t* message = udp_payload(packet);
    std::uint32_t type = std::uint32_t(message[0]) | std::uint32_t(message[1]) << 8 |
                         std::uint32_t(message[2]) << 16 | std::uint32_t(message[3]) << 24;
    switch (type) {
        case wire::transport_data:
            return length >= wire::data_minimum_size
                       ? Verdict{Class::data}
                       : Verdict{Class::drop, Drop::bad_message_length};
        case wire::handshake_initiation:
            return length == wire::initiation_size ? Verdict{Class::handshake}
                                                   : Verdict{Class::drop, Drop::bad_message_length};
        case wire::handshake_response:
            return length == wire::response_size ? Verdict{Class::handshake}
                                                 : Verdict{Class::drop, Drop::bad_message_length};
        case wire::cookie_reply:
            return length == wire::cookie_reply_size
                       ? Verdict{Class::handshake}
                       : Verdict{Class::drop, Drop::bad_message_length};
        default:
            return {Class::drop, Drop::unknown_message_type};
    }
}

Verdict icmpv6_verdict(const rte_mbuf* packet) {
    std::uint32_t offset = packet->l2_len + packet->l3_len;
    if (rte_pktmbuf_data_len(packet) < offset + 4) {
        return {Class::drop, Drop::malformed_outer};
    }
    std::uint8_t type = *rte_pktmbuf_mtod_offset(packet, const std::uint8_t*, offset);
    if (type == icmpv6_neighbour_solicitation || type == icmpv6_neighbour_advertisement) {
        return {Class::neighbour};
    }
    return {Class::drop, Drop::not_for_us};
}

}  // namespace

FrameVerdict classify_frame(rte_mbuf* packet, const ClassifyContext& context) {
    switch (parse_outer(packet)) {
        case OuterKind::udp: {
            if (!addressed_to_us(packet, context) ||
                udp_destination(packet).port != context.listen_port) {
                return {Class::drop, Drop::not_for_us};
            }
            return wireguard_verdict(packet);
        }
        case OuterKind::arp:
            return {Class::neighbour};
        case OuterKind::icmpv6:
            return icmpv6_verdict(packet);
        case OuterKind::other_ip:
            return {Class::drop, Drop::not_for_us};
        case OuterKind::malformed:
            return {Class::drop, Drop::malformed_outer};
        case OuterKind::not_ip:
            break;
    }
    return {Class::drop, Drop::not_ip};
}

// Nearly every frame a gateway receives is this one. The general parse spent ~200
// instructions a packet on it (parse_outer, then the address, the port and the message type,
// each reading the header offsets back out of the mbuf's bit fields: callgrind,
// hub/64/1000); here every field sits at a fixed offset, so one pass over the first 46 bytes
// decides. The same checks as the general parse, in a different order.
bool is_transport_data_v4(rte_mbuf* packet, const ClassifyContext& context) {
    constexpr std::uint32_t headers_length =
        sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr);
    const std::uint32_t frame_length = rte_pktmbuf_data_len(packet);
    if (packet->nb_segs != 1 || frame_length < headers_length + wire::data_minimum_size ||
        context.ipv4 == 0) {
        return false;
    }
    auto* ethernet = rte_pktmbuf_mtod(packet, const rte_ether_hdr*);
    auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(ethernet + 1);
    auto* udp = reinterpret_cast<const rte_udp_hdr*>(ip + 1);
    std::uint32_t type;  // little-endian u32 with three zero bytes (wireguard_verdict)
    std::memcpy(&type, udp + 1, 4);
    const bool ours =
        ethernet->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
        ip->version_ihl == RTE_IPV4_VHL_DEF &&
        (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) ==
            0 &&
        ip->next_proto_id == protocol_udp && ip->dst_addr == context.ipv4 &&
        udp->dst_port == rte_cpu_to_be_16(context.listen_port) && type == wire::transport_data;
    if (!ours) {
        return false;
    }
    const std::uint32_t total_length = rte_be_to_cpu_16(ip->total_length);
    const std::uint32_t udp_length = rte_be_to_cpu_16(udp->dgram_len);
    if (sizeof(rte_ether_hdr) + total_length > frame_length ||
        sizeof(rte_ipv4_hdr) + udp_length > total_length ||
        udp_length < sizeof(rte_udp_hdr) + wire::data_minimum_size ||
        !ipv4_header_checksum_ok(ip, sizeof(rte_ipv4_hdr))) {
        return false;
    }
    packet->tx_offload = rte_mbuf_tx_offload(sizeof(rte_ether_hdr), sizeof(rte_ipv4_hdr),
                                             sizeof(rte_udp_hdr), 0, 0, 0, 0);
    return true;
}

void classify(const Burst<>& received, const ClassifyContext& context, Classified& out,
              WorkerCounters& counters) {
    visit_prefetched(received, [&](rte_mbuf* packet) {
        counters.rx_packets++;
        counters.rx_bytes += rte_pktmbuf_pkt_len(packet);
        if (is_transport_data_v4(packet, context)) [[likely]] {
            out.data.push(packet);
            return;
        }
        Verdict verdict = classify_frame(packet, context);
        switch (verdict.kind) {
            case Class::data:
                out.data.push(packet);
                break;
            case Class::handshake:
                out.handshake.push(packet);
                break;
            case Class::neighbour:
                out.neighbour.push(packet);
                break;
            case Class::drop:
                drop_packet(packet, verdict.reason, counters);
                break;
        }
    });
}

}  // namespace meshgate::dataplane
