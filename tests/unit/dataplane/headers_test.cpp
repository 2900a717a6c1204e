// Outer headers: what prepend_outer() builds parses back, carries correct checksums, and
// every malformed frame is classified as such.
#include "dataplane/headers.hpp"

#include <gtest/gtest.h>

#include <random>

#include <functional>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

using test::make_packet;
using test::packet_bytes;

const rte_ether_addr gateway_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
const rte_ether_addr client_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};

Endpoint v4_endpoint(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                     std::uint16_t port) {
    std::uint8_t bytes[4] = {a, b, c, d};
    std::uint32_t value;
    std::memcpy(&value, bytes, 4);
    return {IpAddress::v4(value), port};
}

Endpoint v6_endpoint(std::uint8_t last, std::uint16_t port) {
    std::uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8};
    bytes[15] = last;
    return {IpAddress::v6(bytes), port};
}

rte_mbuf* built_packet(const OuterAddresses& addresses, std::size_t payload_length) {
    std::vector<std::uint8_t> payload(payload_length);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    rte_mbuf* packet = make_packet(payload);
    EXPECT_NE(packet, nullptr);
    EXPECT_TRUE(prepend_outer(packet, addresses));
    return packet;
}

class PrependOuter : public ::testing::TestWithParam<bool> {};

TEST_P(PrependOuter, BuildsWhatParsesBackWithValidChecksums) {
    const bool v6 = GetParam();
    OuterAddresses addresses{gateway_mac, client_mac,
                             v6 ? v6_endpoint(1, 51820) : v4_endpoint(198, 51, 100, 1, 51820),
                             v6 ? v6_endpoint(2, 40000) : v4_endpoint(198, 51, 100, 2, 40000)};
    for (std::size_t length : {0, 1, 32, 148, 1452}) {
        rte_mbuf* packet = built_packet(addresses, length);
        ASSERT_EQ(parse_outer(packet), OuterKind::udp) << "length " << length;
        EXPECT_EQ(udp_source(packet), addresses.source);
        EXPECT_EQ(udp_destination(packet), addresses.destination);
        EXPECT_EQ(udp_payload_length(packet), length);
        for (std::size_t i = 0; i < length; ++i) {
            ASSERT_EQ(udp_payload(packet)[i], static_cast<std::uint8_t>(i * 7 + 1));
        }

        auto* ip = rte_pktmbuf_mtod_offset(packet, void*, sizeof(rte_ether_hdr));
        auto* udp = rte_pktmbuf_mtod_offset(packet, rte_udp_hdr*, packet->l2_len + packet->l3_len);
        if (v6) {
            EXPECT_NE(udp->dgram_cksum, 0) << "UDP checksum is mandatory over IPv6";
            EXPECT_EQ(rte_ipv6_udptcp_cksum_verify(static_cast<rte_ipv6_hdr*>(ip), udp), 0);
        } else {
            EXPECT_EQ(internet_checksum(ip, sizeof(rte_ipv4_hdr)), 0);
            EXPECT_EQ(udp->dgram_cksum, 0) << "no UDP checksum over IPv4 (RFC 768)";
        }
        rte_pktmbuf_free(packet);
    }
}

// The checksums are summed from the field values, not read back: every address, port and
// length must come out right, including the carry-heavy all-ones ones.
TEST_P(PrependOuter, ChecksumsHoldForRandomAddressesPortsAndLengths) {
    const bool v6 = GetParam();
    std::mt19937 rng(v6 ? 6 : 4);
    auto random_endpoint = [&](bool all_ones) {
        std::uint8_t bytes[16];
        for (auto& byte : bytes) {
            byte = all_ones ? 0xFF : static_cast<std::uint8_t>(rng());
        }
        std::uint32_t v4;
        std::memcpy(&v4, bytes, 4);
        const auto port = static_cast<std::uint16_t>(all_ones ? 0xFFFF : rng());
        return Endpoint{v6 ? IpAddress::v6(bytes) : IpAddress::v4(v4), port};
    };
    for (int round = 0; round < 300; ++round) {
        const bool extreme = round < 2;
        OuterAddresses addresses{gateway_mac, client_mac, random_endpoint(extreme),
                                 random_endpoint(extreme)};
        const std::size_t length = extreme ? 1452 : rng() % 1453;
        rte_mbuf* packet = built_packet(addresses, length);
        ASSERT_EQ(parse_outer(packet), OuterKind::udp);
        auto* ip = rte_pktmbuf_mtod_offset(packet, void*, sizeof(rte_ether_hdr));
        auto* udp = rte_pktmbuf_mtod_offset(packet, rte_udp_hdr*, packet->l2_len + packet->l3_len);
        if (v6) {
            ASSERT_EQ(rte_ipv6_udptcp_cksum_verify(static_cast<rte_ipv6_hdr*>(ip), udp), 0)
                << "round " << round;
        } else {
            ASSERT_EQ(internet_checksum(ip, sizeof(rte_ipv4_hdr)), 0) << "round " << round;
            ASSERT_EQ(udp->dgram_cksum, 0) << "round " << round;
        }
        rte_pktmbuf_free(packet);
    }
}

// The fast path copies a whole 64-byte template ending at the message, its first bytes into
// the headroom; a frame with less headroom than that, but enough for its headers, takes the
// slow path. Both must build the same frame, and neither may touch the message.
TEST_P(PrependOuter, SameFrameWhateverTheHeadroom) {
    const bool v6 = GetParam();
    OuterAddresses addresses{gateway_mac, client_mac,
                             v6 ? v6_endpoint(1, 51820) : v4_endpoint(198, 51, 100, 1, 51820),
                             v6 ? v6_endpoint(2, 40000) : v4_endpoint(198, 51, 100, 2, 40000)};
    const std::uint16_t room = v6 ? outer_header_room_v6 : outer_header_room_v4;
    rte_mbuf* reference = built_packet(addresses, 100);
    const std::vector<std::uint8_t> expected = packet_bytes(reference);
    rte_pktmbuf_free(reference);
    for (std::uint16_t headroom : {room, static_cast<std::uint16_t>(room + 1), std::uint16_t{63},
                                   std::uint16_t{64}, std::uint16_t{65}}) {
        rte_mbuf* packet = rte_pktmbuf_alloc(test::EalEnvironment::pool());
        ASSERT_NE(packet, nullptr);
        packet->data_off = headroom;
        auto* payload = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(packet, 100));
        for (std::size_t i = 0; i < 100; ++i) {
            payload[i] = static_cast<std::uint8_t>(i * 7 + 1);
        }
        ASSERT_TRUE(prepend_outer(packet, addresses)) << "headroom " << headroom;
        EXPECT_EQ(packet_bytes(packet), expected) << "headroom " << headroom;
        EXPECT_EQ(rte_pktmbuf_pkt_len(packet), expected.size());
        rte_pktmbuf_free(packet);
    }
}

// Source and destination of different families make no frame (no template is usable).
TEST(PrependOuterFamilies, MixedFamiliesAreRefused) {
    rte_mbuf* packet = make_packet({1, 2, 3});
    ASSERT_NE(packet, nullptr);
    OuterAddresses addresses{gateway_mac, client_mac, v4_endpoint(198, 51, 100, 1, 1),
                             v6_endpoint(2, 2)};
    EXPECT_FALSE(prepend_outer(packet, addresses));
    EXPECT_EQ(packet_bytes(packet), (std::vector<std::uint8_t>{1, 2, 3}));
    rte_pktmbuf_free(packet);
}

INSTANTIATE_TEST_SUITE_P(Families, PrependOuter, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Ipv6" : "Ipv4"; });

TEST(PrependOuterHeadroom, FailsCleanlyWithoutRoom) {
    rte_mbuf* packet = make_packet({1, 2, 3});
    ASSERT_NE(packet, nullptr);
    rte_pktmbuf_prepend(packet, static_cast<std::uint16_t>(rte_pktmbuf_headroom(packet) - 10));
    OuterAddresses addresses{gateway_mac, client_mac, v4_endpoint(198, 51, 100, 1, 1),
                             v4_endpoint(198, 51, 100, 2, 2)};
    auto before = packet_bytes(packet);
    EXPECT_FALSE(prepend_outer(packet, addresses));
    EXPECT_EQ(packet_bytes(packet), before);
    rte_pktmbuf_free(packet);
}

// Each row corrupts a good IPv4 or IPv6 frame and names what parse_outer must say.
struct Corruption {
    const char* name;
    bool v6;
    std::function<void(std::vector<std::uint8_t>&)> corrupt;
    OuterKind expected;
};

TEST(ParseOuter, ClassifiesEveryCorruption) {
    constexpr std::size_t eth = sizeof(rte_ether_hdr);
    const Corruption table[] = {
        {"intact v4", false, [](auto&) {}, OuterKind::udp},
        {"intact v6", true, [](auto&) {}, OuterKind::udp},
        {"shorter than ethernet", false, [](auto& f) { f.resize(13); }, OuterKind::malformed},
        {"ethernet only", false, [](auto& f) { f.resize(eth); }, OuterKind::malformed},
        {"lldp ethertype", false, [](auto& f) { f[12] = 0x88, f[13] = 0xcc; }, OuterKind::not_ip},
        {"ipv4 version 5", false, [](auto& f) { f[eth] = 0x55; }, OuterKind::malformed},
        {"ipv4 ihl 4", false, [](auto& f) { f[eth] = 0x44; }, OuterKind::malformed},
        {"ipv4 total length past frame", false, [](auto& f) { f[eth + 2] = 0x7f; },
         OuterKind::malformed},
        {"ipv4 truncated frame", false, [](auto& f) { f.resize(f.size() - 1); },
         OuterKind::malformed},
        {"ipv4 bad header checksum", false, [](auto& f) { f[eth + 10] ^= 1; },
         OuterKind::malformed},
        {"ipv4 more fragments", false, [](auto& f) { f[eth + 6] = 0x20; }, OuterKind::malformed},
        {"ipv4 tcp", false,
         [](auto& f) {
             f[eth + 9] = 6;
             f[eth + 10] = f[eth + 11] = 0;
             auto sum = internet_checksum(f.data() + eth, 20);
             f[eth + 10] = static_cast<std::uint8_t>(sum & 0xff);
             f[eth + 11] = static_cast<std::uint8_t>(sum >> 8);
         },
         OuterKind::other_ip},
        {"udp length past ip payload", false, [](auto& f) { f[eth + 20 + 4] = 0x7f; },
         OuterKind::malformed},
        {"udp length below header", false,
         [](auto& f) { f[eth + 20 + 4] = 0, f[eth + 20 + 5] = 7; }, OuterKind::malformed},
        {"ipv6 version 4", true, [](auto& f) { f[eth] = 0x40; }, OuterKind::malformed},
        {"ipv6 payload past frame", true, [](auto& f) { f[eth + 4] = 0x7f; }, OuterKind::malformed},
        {"ipv6 header truncated", true, [](auto& f) { f.resize(eth + 39); }, OuterKind::malformed},
        {"ipv6 icmpv6", true, [](auto& f) { f[eth + 6] = 58; }, OuterKind::icmpv6},
        {"ipv6 hop-by-hop", true, [](auto& f) { f[eth + 6] = 0; }, OuterKind::other_ip},
        {"arp truncated", false, [](auto& f) { f[12] = 0x08, f[13] = 0x06, f.resize(eth + 10); },
         OuterKind::malformed},
        {"arp", false, [](auto& f) { f[12] = 0x08, f[13] = 0x06; }, OuterKind::arp},
    };
    for (const auto& row : table) {
        OuterAddresses addresses{gateway_mac, client_mac,
                                 row.v6 ? v6_endpoint(1, 51820) : v4_endpoint(10, 0, 0, 1, 51820),
                                 row.v6 ? v6_endpoint(2, 9) : v4_endpoint(10, 0, 0, 2, 9)};
        rte_mbuf* good = built_packet(addresses, 32);
        auto frame = packet_bytes(good);
        rte_pktmbuf_free(good);
        row.corrupt(frame);
        rte_mbuf* packet = make_packet(frame);
        ASSERT_NE(packet, nullptr);
        EXPECT_EQ(parse_outer(packet), row.expected) << row.name;
        rte_pktmbuf_free(packet);
    }
}

// An IP packet's own length, or 0 when its header is not whole and consistent within what the
// buffer holds (decap's inner packets, the uplink's frames).
TEST(IpPacketLength, TheHeaderSaysAndTheBufferMustHoldIt) {
    std::vector<std::uint8_t> v4(64, 0xAA);  // a 40-byte IPv4 packet, then bytes not its own
    v4[0] = 0x45, v4[2] = 0, v4[3] = 40;
    EXPECT_EQ(ip_packet_length(v4.data(), 64), 40u) << "a trailer";
    EXPECT_EQ(ip_packet_length(v4.data(), 40), 40u) << "exactly";
    EXPECT_EQ(ip_packet_length(v4.data(), 39), 0u) << "cut short";
    EXPECT_EQ(ip_packet_length(v4.data(), 19), 0u) << "not even a header";
    v4[0] = 0x44;
    EXPECT_EQ(ip_packet_length(v4.data(), 64), 0u) << "a header under 20 bytes";
    v4[0] = 0x4F, v4[3] = 56;
    EXPECT_EQ(ip_packet_length(v4.data(), 64), 0u) << "options past the total length";
    v4[3] = 60;
    EXPECT_EQ(ip_packet_length(v4.data(), 64), 60u) << "a whole 60-byte header";

    std::vector<std::uint8_t> v6(80, 0xAA);  // 40 bytes of header and 8 of payload
    v6[0] = 0x60, v6[4] = 0, v6[5] = 8;
    EXPECT_EQ(ip_packet_length(v6.data(), 80), 48u) << "a trailer";
    EXPECT_EQ(ip_packet_length(v6.data(), 47), 0u) << "cut short";
    EXPECT_EQ(ip_packet_length(v6.data(), 39), 0u) << "not even a header";

    v6[0] = 0x50;
    EXPECT_EQ(ip_packet_length(v6.data(), 80), 0u) << "neither IPv4 nor IPv6";
}

}  // namespace
}  // namespace meshgate::dataplane
