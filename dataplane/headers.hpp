// Outer headers: parsing what arrives, building what leaves, and their checksums.
//
// Parsed offsets travel in the mbuf's own l2_len / l3_len / l4_len fields, so later stages
// (decap, the control thread) find the UDP payload without parsing again.
// All functions are safe to call from any lcore; none allocates.
#pragma once

#include <emmintrin.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "dataplane/checksum.hpp"

namespace meshgate::dataplane {

// Whether two 16-byte fields (IPv6 addresses, or the 16-byte address arrays this module
// keeps) are equal, in one vector compare: the defaulted operators called memcmp, on every
// packet of route and decap (callgrind, hub/64/1000) and twice per NAT lookup.
inline bool same_16_bytes(const std::uint8_t* a, const std::uint8_t* b) {
    const __m128i left = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
    const __m128i right = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(left, right)) == 0xFFFF;
}

// Between network and host byte order, with the compiler's own swaps: DPDK's rte_be_to_cpu_*
// are asm on x86, which the compiler can neither fold nor schedule around, and these run for
// every packet of route and the exit path.
inline std::uint16_t network_to_host16(std::uint16_t value) {
    return std::endian::native == std::endian::little ? __builtin_bswap16(value) : value;
}
inline std::uint16_t host_to_network16(std::uint16_t value) {
    return network_to_host16(value);  // a swap is its own inverse
}
inline std::uint32_t network_to_host32(std::uint32_t value) {
    return std::endian::native == std::endian::little ? __builtin_bswap32(value) : value;
}

// An IPv4 or IPv6 address in network byte order (IPv4 in the first 4 bytes).
struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};
    bool is_v6 = false;

    // Each writes the 16 bytes with one store: built field by field (zeros, then four bytes)
    // and then copied with one 16-byte load, an address defeated store-to-load forwarding on
    // every packet of decap and route (perf annotate, exit_out/1420/1000).
    static IpAddress v4(std::uint32_t network_order) {
        IpAddress a;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(a.bytes.data()),
                         _mm_cvtsi32_si128(static_cast<int>(network_order)));
        return a;
    }
    static IpAddress v6(const std::uint8_t* sixteen) {
        IpAddress a;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(a.bytes.data()),
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(sixteen)));
        a.is_v6 = true;
        return a;
    }
    std::uint32_t v4_network_order() const {
        std::uint32_t value;
        std::memcpy(&value, bytes.data(), 4);
        return value;
    }
    // The IPv4 address as a number (10.0.0.1 is 0x0A000001), for masks and ranges.
    std::uint32_t v4_host_order() const { return network_to_host32(v4_network_order()); }
    bool operator==(const IpAddress& other) const {
        return same_16_bytes(bytes.data(), other.bytes.data()) && is_v6 == other.is_v6;
    }
};

// A UDP endpoint: where a WireGuard message came from or goes to.
struct Endpoint {
    IpAddress address;
    std::uint16_t port = 0;  // host byte order
    bool operator==(const Endpoint&) const = default;
};

enum class OuterKind : std::uint8_t { udp, arp, icmpv6, other_ip, malformed, not_ip };

// Parses Ethernet, then IPv4 (no options beyond the header length, no fragments) or IPv6
// (no extension headers), then UDP or ICMPv6. Sets l2_len/l3_len/l4_len on success.
// Checks: lengths consistent with the frame, IPv4 header checksum, UDP length.
OuterKind parse_outer(rte_mbuf* packet);

// Source and destination of a packet parse_outer() classified as udp. Inline: decap and
// classify call them for every packet.
inline Endpoint udp_endpoint(const rte_mbuf* packet, bool source) {
    Endpoint endpoint;
    auto* ethernet = rte_pktmbuf_mtod(packet, const rte_ether_hdr*);
    if (ethernet->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        auto* ip = rte_pktmbuf_mtod_offset(packet, const rte_ipv4_hdr*, packet->l2_len);
        endpoint.address = IpAddress::v4(source ? ip->src_addr : ip->dst_addr);
    } else {
        auto* ip = rte_pktmbuf_mtod_offset(packet, const rte_ipv6_hdr*, packet->l2_len);
        endpoint.address = IpAddress::v6(source ? ip->src_addr : ip->dst_addr);
    }
    auto* udp =
        rte_pktmbuf_mtod_offset(packet, const rte_udp_hdr*, packet->l2_len + packet->l3_len);
    endpoint.port = rte_be_to_cpu_16(source ? udp->src_port : udp->dst_port);
    return endpoint;
}
inline Endpoint udp_source(const rte_mbuf* packet) {
    return udp_endpoint(packet, true);
}
inline Endpoint udp_destination(const rte_mbuf* packet) {
    return udp_endpoint(packet, false);
}

// Where the UDP payload starts and how long it is (after parse_outer() == udp).
inline std::uint8_t* udp_payload(rte_mbuf* packet) {
    return rte_pktmbuf_mtod_offset(packet, std::uint8_t*,
                                   packet->l2_len + packet->l3_len + packet->l4_len);
}
inline std::uint16_t udp_payload_length(const rte_mbuf* packet) {
    auto* udp =
        rte_pktmbuf_mtod_offset(packet, const rte_udp_hdr*, packet->l2_len + packet->l3_len);
    return static_cast<std::uint16_t>(rte_be_to_cpu_16(udp->dgram_len) - sizeof(rte_udp_hdr));
}

// Whether an inner packet (data at the IP header, as decap leaves it) is IPv6, by its version
// nibble. Route, the exit path and the ICMP errors all branch on it.
inline bool is_ipv6_packet(const rte_mbuf* packet) {
    return (*rte_pktmbuf_mtod(packet, const std::uint8_t*) >> 4) == 6;
}

// What encap needs to wrap a payload for the wire.
struct OuterAddresses {
    rte_ether_addr source_mac;
    rte_ether_addr destination_mac;
    Endpoint source;
    Endpoint destination;  // same family as source
};

inline constexpr std::uint16_t outer_header_room_v4 =
    sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr);
inline constexpr std::uint16_t outer_header_room_v6 =
    sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + sizeof(rte_udp_hdr);

// The outer headers of every frame to one endpoint, built once when the endpoint is learned
// and copied in front of each message (VPP's "rewrite"): only the lengths and one checksum
// change per packet. Building the headers field by field cost encap 120 instructions a packet
// (callgrind, hub/64/1000).
//
// The headers end at the template's last byte, so that they are copied as whole 16-byte
// blocks ending where the message starts: an IPv4 frame's 42 bytes start at offset 22, an
// IPv6 frame's 62 at offset 2, and the copy's first bytes land in the mbuf's headroom.
// Byte 0 is the family (4 or 6), or 0 for "nowhere to send" (no endpoint, or no source
// address of its family). The checksum field the packet must fill (the IPv4 header's; over
// IPv6 the UDP one) holds the folded sum of the words it covers that do not depend on the
// length, not yet inverted. In both layouts that field is the last word of a 16-byte block.
struct alignas(64) OuterTemplate {
    std::array<std::uint8_t, 64> bytes{};

    static constexpr unsigned block_count = 4;
    // Where the frame starts in `bytes`, and the block whose last word is the partial sum.
    static constexpr unsigned v4_offset = 64 - outer_header_room_v4;
    static constexpr unsigned v6_offset = 64 - outer_header_room_v6;
    static constexpr unsigned v4_sum_block = 2;  // 22 + 24 (IPv4 header checksum) = 46
    static constexpr unsigned v6_sum_block = 3;  // 2 + 60 (UDP checksum) = 62
};
static_assert(sizeof(OuterTemplate) == 64);
static_assert(OuterTemplate::v4_offset + sizeof(rte_ether_hdr) +
                  offsetof(rte_ipv4_hdr, hdr_checksum) ==
              16 * OuterTemplate::v4_sum_block + 14);
static_assert(OuterTemplate::v6_offset + sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) +
                  offsetof(rte_udp_hdr, dgram_cksum) ==
              16 * OuterTemplate::v6_sum_block + 14);

// Builds the template for `addresses` (source and destination of one family).
OuterTemplate outer_template(const OuterAddresses& addresses);

// A template as four registers: read once (under the peer's seqlock, PeerSlot::load_outer),
// then written to the frame without going through memory again.
struct LoadedOuter {
    __m128i blocks[OuterTemplate::block_count];
};
inline LoadedOuter load_outer(const OuterTemplate& outer) {
    LoadedOuter loaded;
    for (unsigned i = 0; i < OuterTemplate::block_count; ++i) {
        loaded.blocks[i] = _mm_load_si128(reinterpret_cast<const __m128i*>(outer.bytes.data()) + i);
    }
    return loaded;
}

// The parts of the framing below that are not inline: the copy for frames with less headroom
// than a whole template (false: not even room for the headers), and IPv6's UDP checksum.
bool copy_outer_exactly(rte_mbuf* packet, const LoadedOuter& outer, std::uint16_t room);
std::uint16_t outer_udp_checksum_v6(std::uint32_t partial, rte_be16_t udp_length,
                                    const void* payload, std::uint16_t payload_length);

// The family a loaded template sends to: 4, 6, or 0 for "nowhere" (no endpoint, or no
// source address of its family).
inline unsigned outer_family(const LoadedOuter& outer) {
    return static_cast<unsigned>(_mm_cvtsi128_si32(outer.blocks[0])) & 0xFF;
}

// Prepends a usable template's headers (outer_family() not 0) in front of the mbuf's current
// data (the WireGuard message) and fills the lengths and the IPv4 header's checksum. None of
// it depends on the payload's bytes, so encap frames a packet before its seal, while the
// packet's lines are still in L1. Over IPv4 the UDP checksum stays zero ("none", RFC 768), as
// the AEAD tag covers the payload. Over IPv6 it is mandatory (RFC 8200): the field is left
// holding the template's partial sum, for finish_outer_v6() once the payload is final. False
// when the mbuf lacks headroom (the caller drops).
inline bool prepend_headers(rte_mbuf* packet, const LoadedOuter& outer) {
    const bool v6 = outer_family(outer) == 6;
    const std::uint16_t ip_length = v6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    const std::uint16_t room = v6 ? outer_header_room_v6 : outer_header_room_v4;
    const std::uint16_t payload_length = rte_pktmbuf_data_len(packet);
    auto* payload = rte_pktmbuf_mtod(packet, std::uint8_t*);
    if (rte_pktmbuf_headroom(packet) >= sizeof(OuterTemplate)) [[likely]] {
        auto* blocks = reinterpret_cast<__m128i*>(payload - sizeof(OuterTemplate));
        for (unsigned i = 0; i < OuterTemplate::block_count; ++i) {
            _mm_storeu_si128(blocks + i, outer.blocks[i]);
        }
    } else if (!copy_outer_exactly(packet, outer, room)) {
        return false;
    }
    std::uint8_t* frame = payload - room;
    packet->data_off = static_cast<std::uint16_t>(packet->data_off - room);
    packet->data_len = static_cast<std::uint16_t>(packet->data_len + room);
    packet->pkt_len += room;

    const rte_be16_t udp_length =
        rte_cpu_to_be_16(static_cast<std::uint16_t>(payload_length + sizeof(rte_udp_hdr)));
    auto* udp = reinterpret_cast<rte_udp_hdr*>(payload - sizeof(rte_udp_hdr));
    udp->dgram_len = udp_length;
    if (v6) {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(frame + sizeof(rte_ether_hdr));
        ip->payload_len = udp_length;
    } else {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + sizeof(rte_ether_hdr));
        const rte_be16_t total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(
            payload_length + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr)));
        ip->total_length = total_length;
        const auto partial = static_cast<std::uint16_t>(
            _mm_extract_epi16(outer.blocks[OuterTemplate::v4_sum_block], 7));
        ip->hdr_checksum =
            static_cast<std::uint16_t>(~fold_sum(std::uint32_t{partial} + total_length));
    }
    packet->l2_len = sizeof(rte_ether_hdr);
    packet->l3_len = ip_length;
    packet->l4_len = sizeof(rte_udp_hdr);
    return true;
}

// The UDP checksum of a frame prepend_headers() framed over IPv6, over its final payload.
inline void finish_outer_v6(rte_mbuf* packet) {
    constexpr std::uint16_t room = outer_header_room_v6;
    auto* udp = rte_pktmbuf_mtod_offset(packet, rte_udp_hdr*, room - sizeof(rte_udp_hdr));
    udp->dgram_cksum =
        outer_udp_checksum_v6(udp->dgram_cksum, udp->dgram_len,
                              rte_pktmbuf_mtod_offset(packet, const std::uint8_t*, room),
                              static_cast<std::uint16_t>(rte_pktmbuf_data_len(packet) - room));
}

// Both at once, for a frame whose payload is already final. False when the template is not
// usable or the mbuf lacks headroom (the caller drops).
inline bool prepend_loaded(rte_mbuf* packet, const LoadedOuter& outer) {
    const unsigned family = outer_family(outer);
    if (family == 0 || !prepend_headers(packet, outer)) {
        return false;
    }
    if (family == 6) {
        finish_outer_v6(packet);
    }
    return true;
}

// The same for a one-off frame (the control thread's, the tests').
inline bool prepend_outer(rte_mbuf* packet, const OuterAddresses& addresses) {
    const OuterTemplate outer = outer_template(addresses);
    return prepend_loaded(packet, load_outer(outer));
}

// The length of the IP packet at `ip` by its own header: IPv4's total length, or IPv6's 40
// bytes plus its payload length. 0 unless the header is IPv4 or IPv6, whole, consistent (an
// IPv4 header of at least 20 bytes, within its total length), and the packet fits in the
// `available` bytes. What follows the packet there (Ethernet padding, a trailer, the tunnel's
// padding) is not the packet's. The header checksum is the caller's to verify.
inline std::uint32_t ip_packet_length(const std::uint8_t* ip, std::uint32_t available) {
    if (available >= sizeof(rte_ipv4_hdr) && (ip[0] >> 4) == 4) {
        const std::uint32_t header = (ip[0] & 0x0Fu) * 4;
        const std::uint32_t total = std::uint32_t{ip[2]} << 8 | ip[3];
        return header >= sizeof(rte_ipv4_hdr) && total >= header && total <= available ? total : 0;
    }
    if (available >= sizeof(rte_ipv6_hdr) && (ip[0] >> 4) == 6) {
        const std::uint32_t total = sizeof(rte_ipv6_hdr) + (std::uint32_t{ip[4]} << 8 | ip[5]);
        return total <= available ? total : 0;
    }
    return 0;
}

// The Internet checksum of a buffer, for the tests (the data path verifies IPv4 headers with
// ipv4_header_checksum_ok and builds its sums from raw_sum pieces).
std::uint16_t internet_checksum(const void* data, std::size_t length, std::uint32_t initial = 0);

}  // namespace meshgate::dataplane
