#include "dataplane/icmp_error.hpp"

#include <rte_icmp.h>
#include <rte_ip.h>

#include <algorithm>
#include <cstring>

#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint8_t error_ttl = 64;
constexpr std::uint8_t icmp_code_host_unreachable = 1;
constexpr std::uint8_t icmp_code_fragmentation_needed = 4;
constexpr std::uint8_t icmpv6_code_address_unreachable = 3;
constexpr std::uint32_t icmp_header = 8;  // type, code, checksum, and 4 type-specific bytes

// An IPv4 packet we may answer: not a non-first fragment, not an ICMP error itself (only
// echo requests and replies, and the informational types, get an answer).
bool may_answer_v4(const std::uint8_t* ip, std::uint32_t length) {
    const std::uint32_t header = (ip[0] & 0x0F) * 4u;
    const std::uint16_t fragment = static_cast<std::uint16_t>(ip[6] << 8 | ip[7]);
    if ((fragment & RTE_IPV4_HDR_OFFSET_MASK) != 0) {
        return false;
    }
    if (ip[9] != protocol_icmp) {
        return true;
    }
    if (length < header + 1) {
        return false;
    }
    const std::uint8_t type = ip[header];
    return type == icmp_echo_request || type == icmp_echo_reply || type > icmp_parameter_problem;
}

// ICMPv6 types below 128 are errors (RFC 4443 §2.1). Extension headers before an ICMPv6
// error are not followed: such a packet is answered, which RFC 4443 tolerates.
bool may_answer_v6(const std::uint8_t* ip, std::uint32_t length) {
    if (ip[6] != protocol_icmpv6) {
        return true;
    }
    return length > sizeof(rte_ipv6_hdr) && ip[sizeof(rte_ipv6_hdr)] >= 128;
}

// Cuts the packet to `quote` bytes and prepends `header` bytes. Null when there is no room.
std::uint8_t* make_room(rte_mbuf* packet, std::uint32_t quote, std::uint16_t header) {
    if (rte_pktmbuf_headroom(packet) < header) {
        return nullptr;
    }
    rte_pktmbuf_trim(packet, static_cast<std::uint16_t>(rte_pktmbuf_data_len(packet) - quote));
    return reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(packet, header));
}

bool error_v4(rte_mbuf* packet, IcmpError kind, std::uint32_t mtu, const IpAddress& source) {
    const auto* original = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    if (!may_answer_v4(original, length)) {
        return false;
    }
    rte_be32_t destination;
    std::memcpy(&destination, original + 12, 4);
    constexpr std::uint16_t header = sizeof(rte_ipv4_hdr) + icmp_header;
    const std::uint32_t quote = std::min(length, icmp_error_max_v4 - header);
    std::uint8_t* start = make_room(packet, quote, header);
    if (start == nullptr) {
        return false;
    }
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(start);
    std::memset(ip, 0, header);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(header + quote));
    ip->time_to_live = error_ttl;
    ip->next_proto_id = protocol_icmp;
    ip->src_addr = source.v4_network_order();
    ip->dst_addr = destination;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    std::uint8_t* icmp = start + sizeof(rte_ipv4_hdr);
    if (kind == IcmpError::too_big) {
        icmp[0] = icmp_unreachable;
        icmp[1] = icmp_code_fragmentation_needed;
        // RFC 1191 §4: the next-hop MTU in the low 16 bits of the second word.
        icmp[6] = static_cast<std::uint8_t>(mtu >> 8);
        icmp[7] = static_cast<std::uint8_t>(mtu);
    } else if (kind == IcmpError::unreachable) {
        icmp[0] = icmp_unreachable;
        icmp[1] = icmp_code_host_unreachable;
    } else {
        icmp[0] = icmp_time_exceeded;
    }
    const std::uint16_t checksum =
        static_cast<std::uint16_t>(~rte_raw_cksum(icmp, icmp_header + quote));
    std::memcpy(icmp + 2, &checksum, 2);
    return true;
}

bool error_v6(rte_mbuf* packet, IcmpError kind, std::uint32_t mtu, const IpAddress& source) {
    const auto* original = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    if (!may_answer_v6(original, length)) {
        return false;
    }
    std::uint8_t destination[16];
    std::memcpy(destination, original + 8, 16);
    constexpr std::uint16_t header = sizeof(rte_ipv6_hdr) + icmp_header;
    const std::uint32_t quote = std::min(length, icmp_error_max_v6 - header);
    std::uint8_t* start = make_room(packet, quote, header);
    if (start == nullptr) {
        return false;
    }
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(start);
    std::memset(ip, 0, header);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<std::uint16_t>(icmp_header + quote));
    ip->proto = protocol_icmpv6;
    ip->hop_limits = error_ttl;
    std::memcpy(ip->src_addr, source.bytes.data(), 16);
    std::memcpy(ip->dst_addr, destination, 16);
    std::uint8_t* icmp = start + sizeof(rte_ipv6_hdr);
    if (kind == IcmpError::too_big) {
        icmp[0] = icmpv6_packet_too_big;
        const rte_be32_t value = rte_cpu_to_be_32(mtu);  // RFC 4443 §3.2
        std::memcpy(icmp + 4, &value, 4);
    } else if (kind == IcmpError::unreachable) {
        icmp[0] = icmpv6_unreachable;
        icmp[1] = icmpv6_code_address_unreachable;
    } else {
        icmp[0] = icmpv6_time_exceeded;
    }
    const std::uint16_t checksum = rte_ipv6_udptcp_cksum(ip, icmp);
    std::memcpy(icmp + 2, &checksum, 2);
    return true;
}

}  // namespace

bool make_icmp_error(rte_mbuf* packet, IcmpError kind, std::uint32_t mtu,
                     const std::optional<IpAddress>& source) {
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    if (length == 0) {
        return false;
    }
    const bool v6 = is_ipv6_packet(packet);
    if (!source || source->is_v6 != v6) {
        return false;
    }
    if (v6) {
        return length >= sizeof(rte_ipv6_hdr) && error_v6(packet, kind, mtu, *source);
    }
    return length >= sizeof(rte_ipv4_hdr) && error_v4(packet, kind, mtu, *source);
}

}  // namespace meshgate::dataplane
