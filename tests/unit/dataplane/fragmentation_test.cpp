// IPv4 fragmentation: the pieces fit the MTU, carry the packet's data in order at the right
// offsets (8-byte units), "more fragments" on all but the last (and on the last too when the
// packet was itself a non-final fragment), each with a correct header checksum and the
// packet's metadata; what may not be split is left untouched.
#include "dataplane/fragmentation.hpp"

#include <gtest/gtest.h>
#include <rte_ip.h>

#include <utility>
#include <vector>

#include "dataplane/handoff.hpp"
#include "tests/support/eal_environment.hpp"
#include "tests/support/ipv4_options.hpp"

namespace meshgate::dataplane {
namespace {

using Bytes = std::vector<std::uint8_t>;

// An IPv4 UDP-looking packet of `total` bytes whose data bytes count up.
Bytes ipv4_packet(std::size_t total, std::uint16_t flags_and_offset = 0) {
    Bytes ip(total);
    for (std::size_t i = 20; i < total; ++i) {
        ip[i] = static_cast<std::uint8_t>(i * 7);
    }
    auto* header = reinterpret_cast<rte_ipv4_hdr*>(ip.data());
    header->version_ihl = 0x45;
    header->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(total));
    header->packet_id = rte_cpu_to_be_16(0x1234);
    header->fragment_offset = rte_cpu_to_be_16(flags_and_offset);
    header->time_to_live = 60;
    header->next_proto_id = 17;
    header->src_addr = rte_cpu_to_be_32(0xC6336407);  // 198.51.100.7
    header->dst_addr = rte_cpu_to_be_32(0x0A640002);  // 10.100.0.2
    header->hdr_checksum = rte_ipv4_cksum(header);
    return ip;
}

struct Pieces {
    FragmentResult result;
    std::vector<Bytes> bytes;
    std::vector<PacketMeta> meta;
};

Pieces split(const Bytes& ip, std::uint16_t mtu) {
    rte_mbuf* packet = test::make_packet(ip);
    if (packet == nullptr) {
        ADD_FAILURE() << "no mbuf for " << ip.size() << " bytes";
        return {FragmentResult::too_many, {}, {}};
    }
    packet_meta(packet) = {7, HandoffStage::encap};
    rte_mbuf* fragments[max_fragments];
    unsigned count = 0;
    Pieces out{fragment_ipv4(packet, mtu, fragments, count), {}, {}};
    if (out.result != FragmentResult::fragmented) {
        EXPECT_EQ(count, 0u);
        EXPECT_EQ(test::packet_bytes(packet), ip) << "refused packets are left untouched";
        rte_pktmbuf_free(packet);
    }
    for (unsigned i = 0; i < count; ++i) {
        out.bytes.push_back(test::packet_bytes(fragments[i]));
        out.meta.push_back(packet_meta(fragments[i]));
        rte_pktmbuf_free(fragments[i]);
    }
    return out;
}

std::uint16_t field(const Bytes& ip, std::size_t at) {
    return static_cast<std::uint16_t>(ip[at] << 8 | ip[at + 1]);
}

TEST(Fragmentation, PiecesFitAndReassembleToThePacket) {
    ASSERT_TRUE(register_packet_meta());
    // (total, MTU): just over, a full Ethernet packet into the tunnel, and many small pieces.
    for (auto [total, mtu] :
         {std::pair<std::size_t, std::uint16_t>{1421, 1420}, {1500, 1420}, {2000, 576}}) {
        const Bytes ip = ipv4_packet(total);
        const Pieces pieces = split(ip, mtu);
        ASSERT_EQ(pieces.result, FragmentResult::fragmented) << total;
        const std::size_t chunk = (mtu - 20u) & ~7u;  // 1400 and 552
        ASSERT_EQ(pieces.bytes.size(), (total - 20 + chunk - 1) / chunk) << total;
        Bytes data;
        for (std::size_t i = 0; i < pieces.bytes.size(); ++i) {
            const Bytes& piece = pieces.bytes[i];
            const bool last = i + 1 == pieces.bytes.size();
            EXPECT_LE(piece.size(), mtu);
            EXPECT_EQ(field(piece, 2), piece.size()) << "total length";
            EXPECT_EQ(field(piece, 4), 0x1234) << "identification";
            EXPECT_EQ((field(piece, 6) & RTE_IPV4_HDR_OFFSET_MASK) * 8u, data.size());
            EXPECT_EQ((field(piece, 6) & RTE_IPV4_HDR_MF_FLAG) != 0, !last);
            EXPECT_EQ(rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(piece.data())), 0);
            EXPECT_TRUE(std::equal(piece.begin() + 8, piece.begin() + 10, ip.begin() + 8))
                << "TTL and protocol";
            EXPECT_TRUE(std::equal(piece.begin() + 12, piece.begin() + 20, ip.begin() + 12))
                << "addresses";
            EXPECT_EQ(pieces.meta[i].peer, 7u);
            data.insert(data.end(), piece.begin() + 20, piece.end());
        }
        EXPECT_EQ(data, Bytes(ip.begin() + 20, ip.end())) << total;
    }
}

// A packet whose own length fits, in a buffer that runs on past it, comes back whole as one
// piece without the trailing bytes. Found by fuzz_nat: a header with options and no data
// came back as "fragmented" with no piece at all, the packet freed and not counted.
TEST(Fragmentation, APacketThatFitsByItsLengthComesBackWhole) {
    ASSERT_TRUE(register_packet_meta());
    const Bytes copied_option = {131, 3, 4, 0};  // a loose source route, copied to every piece
    const Bytes header_only = test::with_ipv4_options(ipv4_packet(20), copied_option);
    const Bytes odd_data = test::with_ipv4_options(ipv4_packet(1416), copied_option);
    // (packet, MTU): no data at all; data that the 8-byte rule would have cut in two.
    for (auto [ip, mtu] : {std::pair<Bytes, std::uint16_t>{header_only, 68}, {odd_data, 1420}}) {
        ASSERT_LE(ip.size(), mtu);
        Bytes buffer = ip;
        buffer.resize(1500, 0xEE);
        const Pieces pieces = split(buffer, mtu);
        ASSERT_EQ(pieces.result, FragmentResult::fragmented) << ip.size();
        ASSERT_EQ(pieces.bytes.size(), 1u) << ip.size();
        EXPECT_EQ(pieces.bytes[0], ip) << "the same header, checksum and data";
        EXPECT_EQ(pieces.meta[0].peer, 7u);
    }
}

// A fragment split again keeps its place in the datagram, and a non-final one stays
// non-final.
TEST(Fragmentation, AFragmentIsSplitAgainInPlace) {
    ASSERT_TRUE(register_packet_meta());
    const Bytes ip = ipv4_packet(1500, RTE_IPV4_HDR_MF_FLAG | 185);
    const Pieces pieces = split(ip, 1420);
    ASSERT_EQ(pieces.result, FragmentResult::fragmented);
    ASSERT_EQ(pieces.bytes.size(), 2u);
    EXPECT_EQ(field(pieces.bytes[0], 6), RTE_IPV4_HDR_MF_FLAG | 185);
    EXPECT_EQ(field(pieces.bytes[1], 6), RTE_IPV4_HDR_MF_FLAG | (185 + 175));
}

// RFC 791 §3.2: the first fragment keeps every option, the later ones only those whose type
// has the "copied" flag, in whole words; each piece still fits and the data reassembles.
TEST(Fragmentation, LaterFragmentsCarryOnlyTheCopiedOptions) {
    ASSERT_TRUE(register_packet_meta());
    const Bytes options = {
        1,                                     // no operation: not copied
        7,   11, 4, 0,   0, 0, 0, 0, 0, 0, 0,  // record route: not copied
        131, 7,  4, 192, 0, 2, 9,              // loose source route: copied
        0,                                     // end of options
    };
    const Bytes ip = test::with_ipv4_options(ipv4_packet(1500), options);
    ASSERT_EQ(ip.size(), 1520u);
    const Pieces pieces = split(ip, 1420);
    ASSERT_EQ(pieces.result, FragmentResult::fragmented);
    ASSERT_EQ(pieces.bytes.size(), 2u);
    const Bytes& first = pieces.bytes[0];
    const Bytes& later = pieces.bytes[1];
    EXPECT_EQ(first[0], 0x4A) << "the first piece keeps the 40-byte header";
    EXPECT_TRUE(std::equal(first.begin() + 20, first.begin() + 40, options.begin()));
    EXPECT_EQ(first.size(), 40u + 1376u) << "1380 bytes of room, in 8-byte units";
    EXPECT_EQ(later[0], 0x47) << "20 bytes and the 7-byte copied option, padded to 28";
    EXPECT_EQ(Bytes(later.begin() + 20, later.begin() + 28), (Bytes{131, 7, 4, 192, 0, 2, 9, 0}));
    EXPECT_EQ(field(later, 6) & RTE_IPV4_HDR_OFFSET_MASK, 1376 / 8);
    Bytes data(first.begin() + 40, first.end());
    data.insert(data.end(), later.begin() + 28, later.end());
    EXPECT_EQ(data, Bytes(ip.begin() + 40, ip.end()));
    for (const Bytes& piece : pieces.bytes) {
        EXPECT_LE(piece.size(), 1420u);
        EXPECT_EQ(field(piece, 2), piece.size()) << "total length";
        EXPECT_EQ(rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(piece.data())), 0);
    }
    // Nothing copied: the later pieces have the bare 20-byte header.
    const Pieces bare =
        split(test::with_ipv4_options(ipv4_packet(1500), {7, 7, 4, 0, 0, 0, 0, 0}), 1420);
    ASSERT_EQ(bare.result, FragmentResult::fragmented);
    ASSERT_EQ(bare.bytes.size(), 2u);
    EXPECT_EQ(bare.bytes[1][0], 0x45);
}

TEST(Fragmentation, WhatMayNotBeSplitIsLeftAlone) {
    ASSERT_TRUE(register_packet_meta());
    EXPECT_EQ(split(ipv4_packet(1500, RTE_IPV4_HDR_DF_FLAG), 1420).result,
              FragmentResult::not_allowed);
    // Options that do not parse: a length running past the header, a length below 2, and a
    // header too short to hold the length byte.
    for (const Bytes& bad : {Bytes{131, 9, 4, 0}, Bytes{7, 0, 0, 0}, Bytes{1, 1, 1, 131}}) {
        EXPECT_EQ(split(test::with_ipv4_options(ipv4_packet(1500), bad), 1420).result,
                  FragmentResult::not_allowed);
    }
    Bytes v6 = ipv4_packet(1500);
    v6[0] = 0x60;
    EXPECT_EQ(split(v6, 1420).result, FragmentResult::not_allowed);
    EXPECT_EQ(split(ipv4_packet(1500), 200).result, FragmentResult::too_many)
        << "8 fragments at most";
    Bytes broken = ipv4_packet(1500);
    broken[2] = 0, broken[3] = 10;  // a total length shorter than the header itself
    EXPECT_EQ(split(broken, 1420).result, FragmentResult::not_allowed);
}

}  // namespace
}  // namespace meshgate::dataplane
