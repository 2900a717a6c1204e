#include "dataplane/headers.hpp"

#include <rte_arp.h>
#include <rte_byteorder.h>

#include <cstring>

#include "dataplane/checksum.hpp"
#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint8_t default_ttl = 64;

OuterKind parse_udp(rte_mbuf* packet, std::uint32_t l4_offset, std::uint32_t l4_length) {
    if (l4_length < sizeof(rte_udp_hdr)) {
        return OuterKind::malformed;
    }
    auto* udp = rte_pktmbuf_mtod_offset(packet, const rte_udp_hdr*, l4_offset);
    std::uint16_t udp_length = rte_be_to_cpu_16(udp->dgram_len);
    if (udp_length < sizeof(rte_udp_hdr) || udp_length > l4_length) {
        return OuterKind::malformed;
    }
    packet->l4_len = sizeof(rte_udp_hdr);
    return OuterKind::udp;
}

OuterKind parse_ipv4(rte_mbuf* packet, std::uint32_t frame_length) {
    std::uint32_t offset = packet->l2_len;
    if (frame_length < offset + sizeof(rte_ipv4_hdr)) {
        return OuterKind::malformed;
    }
    auto* ip = rte_pktmbuf_mtod_offset(packet, const rte_ipv4_hdr*, offset);
    std::uint32_t header_length = rte_ipv4_hdr_len(ip);
    std::uint32_t total_length = rte_be_to_cpu_16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || header_length < sizeof(rte_ipv4_hdr) ||
        total_length < header_length || frame_length < offset + total_length) {
        return OuterKind::malformed;
    }
    // A fragment cannot be a whole WireGuard message; reassembly is not a gateway's job.
    if ((rte_be_to_cpu_16(ip->fragment_offset) &
         (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
        return OuterKind::malformed;
    }
    if (!ipv4_header_checksum_ok(ip, header_length)) {
        return OuterKind::malformed;
    }
    packet->l3_len = static_cast<std::uint16_t>(header_length);
    if (ip->next_proto_id != protocol_udp) {
        return OuterKind::other_ip;
    }
    return parse_udp(packet, offset + header_length, total_length - header_length);
}

OuterKind parse_ipv6(rte_mbuf* packet, std::uint32_t frame_length) {
    std::uint32_t offset = packet->l2_len;
    if (frame_length < offset + sizeof(rte_ipv6_hdr)) {
        return OuterKind::malformed;
    }
    auto* ip = rte_pktmbuf_mtod_offset(packet, const rte_ipv6_hdr*, offset);
    std::uint32_t payload_length = rte_be_to_cpu_16(ip->payload_len);
    if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 ||
        frame_length < offset + sizeof(rte_ipv6_hdr) + payload_length) {
        return OuterKind::malformed;
    }
    packet->l3_len = sizeof(rte_ipv6_hdr);
    if (ip->proto == protocol_icmpv6) {
        return OuterKind::icmpv6;
    }
    if (ip->proto != protocol_udp) {
        return OuterKind::other_ip;  // extension headers included: WireGuard never sends them
    }
    return parse_udp(packet, offset + sizeof(rte_ipv6_hdr), payload_length);
}

}  // namespace

std::uint16_t internet_checksum(const void* data, std::size_t length, std::uint32_t initial) {
    return static_cast<std::uint16_t>(~fold_sum(fold_sum(raw_sum(data, length)) + initial));
}

OuterKind parse_outer(rte_mbuf* packet) {
    // Headers must be in the first segment; our mempools make single-segment frames.
    std::uint32_t frame_length = rte_pktmbuf_data_len(packet);
    if (packet->nb_segs != 1 || frame_length < sizeof(rte_ether_hdr)) {
        return OuterKind::malformed;
    }
    packet->l2_len = sizeof(rte_ether_hdr);
    packet->l3_len = 0;
    packet->l4_len = 0;
    auto* ethernet = rte_pktmbuf_mtod(packet, const rte_ether_hdr*);
    switch (rte_be_to_cpu_16(ethernet->ether_type)) {
        case RTE_ETHER_TYPE_IPV4:
            return parse_ipv4(packet, frame_length);
        case RTE_ETHER_TYPE_IPV6:
            return parse_ipv6(packet, frame_length);
        case RTE_ETHER_TYPE_ARP:
            return frame_length >= sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)
                       ? OuterKind::arp
                       : OuterKind::malformed;
        default:
            return OuterKind::not_ip;
    }
}

namespace {

// Sums of 16-bit words exactly as memory holds them, computed from the values being written
// rather than read back: loading a header with wide loads right after storing it field by
// field defeats store-to-load forwarding (perf annotate of prepend_outer, hub/64/1000).
// Arguments are in network order.
inline std::uint32_t words_of(rte_be32_t value) {
    return (value & 0xFFFF) + (value >> 16);
}
inline std::uint16_t byte_pair(std::uint8_t first, std::uint8_t second) {
    const std::uint8_t bytes[2] = {first, second};
    std::uint16_t word;
    std::memcpy(&word, bytes, 2);
    return word;
}

}  // namespace

OuterTemplate outer_template(const OuterAddresses& addresses) {
    OuterTemplate outer;
    const bool v6 = addresses.source.address.is_v6;
    if (v6 != addresses.destination.address.is_v6) {
        return outer;  // not usable
    }
    const unsigned offset = v6 ? OuterTemplate::v6_offset : OuterTemplate::v4_offset;
    const std::uint16_t ip_length = v6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    outer.bytes[0] = v6 ? 6 : 4;
    auto* ethernet = reinterpret_cast<rte_ether_hdr*>(outer.bytes.data() + offset);
    ethernet->src_addr = addresses.source_mac;
    ethernet->dst_addr = addresses.destination_mac;
    ethernet->ether_type = rte_cpu_to_be_16(v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);

    const rte_be16_t source_port = rte_cpu_to_be_16(addresses.source.port);
    const rte_be16_t destination_port = rte_cpu_to_be_16(addresses.destination.port);
    auto* udp =
        reinterpret_cast<rte_udp_hdr*>(reinterpret_cast<std::uint8_t*>(ethernet + 1) + ip_length);
    udp->src_port = source_port;
    udp->dst_port = destination_port;
    if (v6) {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(ethernet + 1);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->proto = protocol_udp;
        ip->hop_limits = default_ttl;
        std::memcpy(ip->src_addr, addresses.source.address.bytes.data(), 16);
        std::memcpy(ip->dst_addr, addresses.destination.address.bytes.data(), 16);
        // The pseudo-header's addresses and protocol, and the ports; the lengths (the
        // pseudo-header's and the UDP header's) and the payload are added per packet.
        udp->dgram_cksum =
            fold_sum(std::uint32_t{byte_pair(0, protocol_udp)} + source_port + destination_port +
                     raw_sum(addresses.source.address.bytes.data(), 16) +
                     raw_sum(addresses.destination.address.bytes.data(), 16));
    } else {
        const rte_be32_t source = addresses.source.address.v4_network_order();
        const rte_be32_t destination = addresses.destination.address.v4_network_order();
        // Don't fragment: WireGuard's MTU arithmetic assumes the path carries whole datagrams.
        const rte_be16_t fragment = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(ethernet + 1);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->fragment_offset = fragment;
        ip->time_to_live = default_ttl;
        ip->next_proto_id = protocol_udp;
        ip->src_addr = source;
        ip->dst_addr = destination;
        // Every word but total_length, which the packet adds.
        ip->hdr_checksum = fold_sum(std::uint32_t{byte_pair(RTE_IPV4_VHL_DEF, 0)} + fragment +
                                    byte_pair(default_ttl, protocol_udp) + words_of(source) +
                                    words_of(destination));
        // No UDP checksum over IPv4 (RFC 768 allows zero): the Poly1305 tag already covers
        // every byte of the message, every receiver accepts it (VPP's WireGuard sends the
        // same), and the sum cost a full pass over a payload the AEAD had only just written
        // (perf annotate of raw_sum_avx2, hub/64/1000: a tenth of the worker's samples).
    }
    return outer;
}

std::uint16_t outer_udp_checksum_v6(std::uint32_t partial, rte_be16_t udp_length,
                                    const void* payload, std::uint16_t payload_length) {
    // The pseudo-header's length and the UDP header's: the same value twice. A result of 0 is
    // sent as 0xFFFF: over UDP, 0 means "no checksum" (RFC 768); over IPv6 the checksum is
    // mandatory (RFC 8200 §8.1).
    const std::uint16_t checksum = static_cast<std::uint16_t>(
        ~fold_sum(partial + 2u * udp_length + fold_sum(raw_sum(payload, payload_length))));
    return checksum == 0 ? 0xFFFF : checksum;
}

bool copy_outer_exactly(rte_mbuf* packet, const LoadedOuter& outer, std::uint16_t room) {
    if (rte_pktmbuf_headroom(packet) < room) {
        return false;
    }
    alignas(64) std::uint8_t bytes[sizeof(OuterTemplate)];
    for (unsigned i = 0; i < OuterTemplate::block_count; ++i) {
        _mm_store_si128(reinterpret_cast<__m128i*>(bytes) + i, outer.blocks[i]);
    }
    std::memcpy(rte_pktmbuf_mtod(packet, std::uint8_t*) - room, bytes + sizeof(bytes) - room, room);
    return true;
}

}  // namespace meshgate::dataplane
