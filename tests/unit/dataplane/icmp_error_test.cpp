// ICMP errors built in place: headers, the quote's size limits, the reported MTU, checksums
// that verify (computed here the plain way), and the cases where no error may be sent.
#include "dataplane/icmp_error.hpp"

#include <gtest/gtest.h>
#include <rte_ip.h>

#include <vector>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

using Bytes = std::vector<std::uint8_t>;
using test::make_packet;
using test::packet_bytes;

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress address;
    address.bytes = {a, b, c, d};
    return address;
}
IpAddress v6(std::uint8_t last) {
    IpAddress address;
    address.is_v6 = true;
    address.bytes = {0xfd, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
    return address;
}

const IpAddress gateway4 = v4(10, 100, 0, 1);
const IpAddress client4 = v4(10, 100, 0, 2);
const IpAddress gateway6 = v6(1);
const IpAddress client6 = v6(2);

// One's complement sum, RFC 1071, over bytes as they lie (big-endian words).
std::uint32_t sum_words(const std::uint8_t* data, std::size_t length, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < length; i += 2) {
        sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    }
    if (length % 2) {
        sum += static_cast<std::uint32_t>(data[length - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    return sum;
}

// A packet from the client: IPv4 or IPv6, `protocol`, `length` bytes in all, DF set.
Bytes client_packet(bool is_v6, std::uint8_t protocol, std::size_t length,
                    std::uint8_t first_payload_byte = 0x33) {
    Bytes packet(length, 0);
    for (std::size_t i = 0; i < length; ++i) {
        packet[i] = static_cast<std::uint8_t>(i * 7);
    }
    if (is_v6) {
        packet[0] = 0x60;
        packet[4] = static_cast<std::uint8_t>((length - 40) >> 8);
        packet[5] = static_cast<std::uint8_t>(length - 40);
        packet[6] = protocol;
        packet[7] = 1;
        std::copy_n(client6.bytes.begin(), 16, packet.begin() + 8);
        packet[40] = first_payload_byte;
        return packet;
    }
    packet[0] = 0x45;
    packet[2] = static_cast<std::uint8_t>(length >> 8);
    packet[3] = static_cast<std::uint8_t>(length);
    packet[6] = 0x40, packet[7] = 0;  // DF
    packet[8] = 1;
    packet[9] = protocol;
    std::copy_n(client4.bytes.begin(), 4, packet.begin() + 12);
    packet[20] = first_payload_byte;
    return packet;
}

struct Case {
    const char* name;
    bool is_v6;
    IcmpError kind;
    std::size_t length;
    std::uint8_t type, code;
    std::size_t quote;  // expected quote length
};

const Case cases[] = {
    {"v4_too_big", false, IcmpError::too_big, 1420, 3, 4, 548},
    {"v4_time_exceeded_small", false, IcmpError::time_exceeded, 60, 11, 0, 60},
    {"v6_too_big", true, IcmpError::too_big, 1420, 2, 0, 1232},
    {"v6_time_exceeded_small", true, IcmpError::time_exceeded, 80, 3, 0, 80},
    {"v4_host_unreachable", false, IcmpError::unreachable, 1420, 3, 1, 548},
    {"v6_address_unreachable", true, IcmpError::unreachable, 100, 1, 3, 100},
};

class IcmpErrorCase : public ::testing::TestWithParam<Case> {};

TEST_P(IcmpErrorCase, HeadersQuoteAndChecksums) {
    const Case& c = GetParam();
    const Bytes original = client_packet(c.is_v6, 17, c.length);
    rte_mbuf* packet = make_packet(original);
    ASSERT_NE(packet, nullptr);
    ASSERT_TRUE(make_icmp_error(packet, c.kind, 1400,
                                c.is_v6 ? std::optional(gateway6) : std::optional(gateway4)));
    const Bytes error = packet_bytes(packet);
    rte_pktmbuf_free(packet);
    const std::size_t header = c.is_v6 ? 48 : 28;
    ASSERT_EQ(error.size(), header + c.quote);
    EXPECT_EQ(Bytes(error.begin() + header, error.end()),
              Bytes(original.begin(), original.begin() + c.quote));
    const std::uint8_t* icmp = error.data() + header - 8;
    EXPECT_EQ(icmp[0], c.type);
    EXPECT_EQ(icmp[1], c.code);
    if (c.is_v6) {
        EXPECT_EQ(error[0] >> 4, 6);
        EXPECT_EQ((error[4] << 8 | error[5]), 8 + c.quote);
        EXPECT_EQ(error[6], 58);
        EXPECT_EQ(Bytes(error.begin() + 8, error.begin() + 24),
                  Bytes(gateway6.bytes.begin(), gateway6.bytes.end()));
        EXPECT_EQ(Bytes(error.begin() + 24, error.begin() + 40),
                  Bytes(client6.bytes.begin(), client6.bytes.end()));
        // The checksum covers the pseudo header: addresses, length, next header.
        std::uint32_t sum = sum_words(error.data() + 8, 32);
        sum += static_cast<std::uint32_t>(8 + c.quote) + 58;
        EXPECT_EQ(sum_words(icmp, 8 + c.quote, sum), 0xFFFFu) << "ICMPv6 checksum";
        if (c.kind == IcmpError::too_big) {
            EXPECT_EQ((icmp[4] << 24 | icmp[5] << 16 | icmp[6] << 8 | icmp[7]), 1400);
        }
    } else {
        EXPECT_EQ(error[0], 0x45);
        EXPECT_EQ((error[2] << 8 | error[3]), header + c.quote);
        EXPECT_EQ(error[9], 1);
        EXPECT_EQ(sum_words(error.data(), 20), 0xFFFFu) << "IPv4 header checksum";
        EXPECT_EQ(Bytes(error.begin() + 12, error.begin() + 16),
                  Bytes(gateway4.bytes.begin(), gateway4.bytes.begin() + 4));
        EXPECT_EQ(Bytes(error.begin() + 16, error.begin() + 20),
                  Bytes(client4.bytes.begin(), client4.bytes.begin() + 4));
        EXPECT_EQ(sum_words(icmp, 8 + c.quote), 0xFFFFu) << "ICMP checksum";
        if (c.kind == IcmpError::too_big) {
            EXPECT_EQ((icmp[6] << 8 | icmp[7]), 1400) << "RFC 1191 next-hop MTU";
        }
    }
    if (c.kind != IcmpError::too_big) {
        EXPECT_EQ(Bytes(icmp + 4, icmp + 8), Bytes(4, 0)) << "unused word";
    }
}

INSTANTIATE_TEST_SUITE_P(All, IcmpErrorCase, ::testing::ValuesIn(cases),
                         [](const auto& info) { return std::string(info.param.name); });

// No error about an error, about a later fragment, or without a source of the family; the
// packet is left exactly as it was for the caller to drop.
TEST(IcmpError, RefusedCasesLeaveThePacketAlone) {
    Bytes later_fragment = client_packet(false, 17, 100);
    later_fragment[6] = 0x00, later_fragment[7] = 0x10;
    const struct {
        const char* name;
        Bytes packet;
        std::optional<IpAddress> source;
    } refused[] = {
        {"ICMP error", client_packet(false, 1, 100, 3), gateway4},
        {"ICMPv6 error", client_packet(true, 58, 100, 1), gateway6},
        {"later fragment", later_fragment, gateway4},
        {"no source", client_packet(false, 17, 100), std::nullopt},
        {"source of the other family", client_packet(true, 17, 100), gateway4},
        {"truncated", Bytes{0x45, 0, 0}, gateway4},
    };
    for (const auto& row : refused) {
        rte_mbuf* packet = make_packet(row.packet);
        ASSERT_NE(packet, nullptr);
        EXPECT_FALSE(make_icmp_error(packet, IcmpError::time_exceeded, 0, row.source)) << row.name;
        EXPECT_EQ(packet_bytes(packet), row.packet) << row.name;
        rte_pktmbuf_free(packet);
    }
    // Echo requests and replies are not errors: they get one.
    rte_mbuf* echo = make_packet(client_packet(false, 1, 100, 8));
    EXPECT_TRUE(make_icmp_error(echo, IcmpError::time_exceeded, 0, gateway4));
    rte_pktmbuf_free(echo);
    rte_mbuf* echo6 = make_packet(client_packet(true, 58, 100, 128));
    EXPECT_TRUE(make_icmp_error(echo6, IcmpError::time_exceeded, 0, gateway6));
    rte_pktmbuf_free(echo6);
}

// On a synthetic 1 GHz clock: the burst at once, then one error per 1/rate; a long quiet
// spell refills the bucket to the burst and no further.
TEST(IcmpErrorLimiter, BurstThenTheRate) {
    constexpr std::uint64_t hz = 1'000'000'000;
    constexpr std::uint64_t tick = hz / 1000;  // one error's worth at 1000 a second
    IcmpErrorLimiter limiter(hz, 1000, 50);
    const std::uint64_t start = 5 * hz;
    for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(limiter.allow(start)) << i;
    }
    EXPECT_FALSE(limiter.allow(start));
    EXPECT_FALSE(limiter.allow(start + tick - 1));
    EXPECT_TRUE(limiter.allow(start + tick));
    EXPECT_FALSE(limiter.allow(start + tick));
    // Ten seconds later the bucket holds the burst again, not ten seconds' worth.
    const std::uint64_t later = start + 10 * hz;
    for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(limiter.allow(later)) << i;
    }
    EXPECT_FALSE(limiter.allow(later));
    // A steady 1000 a second passes whole.
    for (std::uint64_t i = 1; i <= 2000; ++i) {
        EXPECT_TRUE(limiter.allow(later + i * tick)) << i;
    }
}

}  // namespace
}  // namespace meshgate::dataplane
