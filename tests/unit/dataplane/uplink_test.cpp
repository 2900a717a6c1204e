// Uplink classify: every kind of frame from the uplink lands in the right sub-burst (IP for
// the uplink's address with its Ethernet header stripped, ARP/ND for the control thread with
// the port stamped) or is dropped under the right reason.
#include "dataplane/uplink.hpp"

#include <gtest/gtest.h>
#include <rte_ip.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

using Bytes = std::vector<std::uint8_t>;
using test::make_packet;
using test::packet_bytes;

const std::array<std::uint8_t, 4> uplink4 = {203, 0, 113, 1};
const std::array<std::uint8_t, 16> uplink6 = {0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0,
                                              0,    0,    0,    0,    0, 0, 0, 1};

UplinkContext context() {
    UplinkContext c;
    c.port = 7;
    c.mac = {{0x02, 0, 0, 0, 0, 0x10}};
    std::memcpy(&c.ipv4, uplink4.data(), 4);
    c.ipv6 = uplink6;
    c.has_ipv6 = true;
    return c;
}

Bytes frame(std::uint16_t ether_type, const Bytes& payload) {
    Bytes bytes(14 + payload.size(), 0);
    bytes[0] = 0x02, bytes[5] = 0x10;   // to the uplink's MAC
    bytes[6] = 0x02, bytes[11] = 0x20;  // from the router's
    bytes[12] = static_cast<std::uint8_t>(ether_type >> 8);
    bytes[13] = static_cast<std::uint8_t>(ether_type);
    std::copy(payload.begin(), payload.end(), bytes.begin() + 14);
    return bytes;
}

// Sets the IPv4 header checksum of `ip` (a 20-byte header).
Bytes with_checksum(Bytes ip) {
    ip[10] = ip[11] = 0;
    const std::uint16_t sum = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(ip.data()));
    std::memcpy(ip.data() + 10, &sum, 2);
    return ip;
}

Bytes ipv4_to(std::array<std::uint8_t, 4> destination) {
    Bytes ip(28, 0);
    ip[0] = 0x45, ip[3] = 28, ip[8] = 64, ip[9] = 17;
    ip[12] = 198, ip[13] = 51, ip[14] = 100, ip[15] = 9;
    std::copy(destination.begin(), destination.end(), ip.begin() + 16);
    return with_checksum(ip);
}

Bytes ipv6_to(std::array<std::uint8_t, 16> destination, std::uint8_t next = 17,
              std::uint8_t first = 0) {
    Bytes ip(48, 0);
    ip[0] = 0x60, ip[5] = 8, ip[6] = next, ip[7] = 255;
    std::copy(destination.begin(), destination.end(), ip.begin() + 24);
    ip[40] = first;
    return ip;
}

enum class Expect { inbound, neighbour, drop };

struct Row {
    const char* name;
    Bytes frame;
    Expect expect;
    Drop reason = Drop::not_ip;
    Bytes inbound_ip = {};  // when not the whole frame past Ethernet
};

Bytes with_trailer(Bytes ip) {
    ip.insert(ip.end(), 18, 0xAA);
    return ip;
}

Bytes cut(Bytes ip, std::size_t length) {
    ip.resize(length);
    return ip;
}

Bytes ipv4_claiming(std::uint8_t total_length) {
    Bytes ip = ipv4_to(uplink4);
    ip[3] = total_length;
    return with_checksum(ip);
}

Bytes damaged(Bytes ip) {
    ip[8] ^= 0x01;  // the TTL, after the checksum was computed
    return ip;
}

TEST(ClassifyUplink, EveryKindOfFrame) {
    std::array<std::uint8_t, 16> solicited_node = {0xff, 0x02, 0, 0, 0,    0, 0, 0,
                                                   0,    0,    0, 1, 0xff, 0, 0, 1};
    std::array<std::uint8_t, 16> other6 = uplink6;
    other6[15] = 2;
    const Row rows[] = {
        {"IPv4 to the uplink", frame(RTE_ETHER_TYPE_IPV4, ipv4_to(uplink4)), Expect::inbound},
        {"IPv6 to the uplink", frame(RTE_ETHER_TYPE_IPV6, ipv6_to(uplink6)), Expect::inbound},
        {"ARP", frame(RTE_ETHER_TYPE_ARP, Bytes(28, 1)), Expect::neighbour},
        {"neighbour solicitation", frame(RTE_ETHER_TYPE_IPV6, ipv6_to(solicited_node, 58, 135)),
         Expect::neighbour},
        {"neighbour advertisement", frame(RTE_ETHER_TYPE_IPV6, ipv6_to(uplink6, 58, 136)),
         Expect::neighbour},
        {"IPv4 to another host", frame(RTE_ETHER_TYPE_IPV4, ipv4_to({203, 0, 113, 2})),
         Expect::drop, Drop::not_for_us},
        {"IPv6 to another host", frame(RTE_ETHER_TYPE_IPV6, ipv6_to(other6)), Expect::drop,
         Drop::not_for_us},
        {"VLAN", frame(0x8100, Bytes(40, 0)), Expect::drop, Drop::not_ip},
        {"runt", Bytes(10, 0), Expect::drop, Drop::malformed_outer},
        {"IPv4 header cut short", frame(RTE_ETHER_TYPE_IPV4, Bytes(12, 0x45)), Expect::drop,
         Drop::malformed_outer},
        {"IPv6 ethertype, IPv4 inside", frame(RTE_ETHER_TYPE_IPV6, ipv4_to(uplink4)), Expect::drop,
         Drop::malformed_outer},
        // Ethernet pads short frames, and some links append trailers: the packet is what its
        // IP header says it is.
        {"IPv4 with a trailer", frame(RTE_ETHER_TYPE_IPV4, with_trailer(ipv4_to(uplink4))),
         Expect::inbound, Drop::not_ip, ipv4_to(uplink4)},
        {"IPv6 with a trailer", frame(RTE_ETHER_TYPE_IPV6, with_trailer(ipv6_to(uplink6))),
         Expect::inbound, Drop::not_ip, ipv6_to(uplink6)},
        {"IPv4 cut short of its total length",
         frame(RTE_ETHER_TYPE_IPV4, cut(ipv4_to(uplink4), 24)), Expect::drop,
         Drop::malformed_outer},
        {"IPv4 total length shorter than a header", frame(RTE_ETHER_TYPE_IPV4, ipv4_claiming(16)),
         Expect::drop, Drop::malformed_outer},
        {"IPv4 with a damaged header", frame(RTE_ETHER_TYPE_IPV4, damaged(ipv4_to(uplink4))),
         Expect::drop, Drop::malformed_outer},
        {"IPv6 cut short of its payload length",
         frame(RTE_ETHER_TYPE_IPV6, cut(ipv6_to(uplink6), 44)), Expect::drop,
         Drop::malformed_outer},
    };
    const UplinkContext uplink = context();
    for (const Row& row : rows) {
        Burst<> received;
        received.push(make_packet(row.frame));
        UplinkClassified out;
        WorkerCounters counters;
        classify_uplink(received, uplink, out, counters);
        EXPECT_EQ(counters.rx_packets, 1u) << row.name;
        switch (row.expect) {
            case Expect::inbound:
                ASSERT_EQ(out.inbound.count, 1) << row.name;
                EXPECT_EQ(packet_bytes(out.inbound[0]),
                          row.inbound_ip.empty() ? Bytes(row.frame.begin() + 14, row.frame.end())
                                                 : row.inbound_ip)
                    << row.name << ": Ethernet stripped";
                rte_pktmbuf_free(out.inbound[0]);
                break;
            case Expect::neighbour:
                ASSERT_EQ(out.neighbour.count, 1) << row.name;
                EXPECT_EQ(packet_bytes(out.neighbour[0]), row.frame) << row.name;
                EXPECT_EQ(out.neighbour[0]->port, 7) << row.name << ": port stamped";
                rte_pktmbuf_free(out.neighbour[0]);
                break;
            case Expect::drop:
                EXPECT_EQ(out.inbound.count + out.neighbour.count, 0) << row.name;
                EXPECT_EQ(counters.dropped(row.reason), 1u) << row.name;
                break;
        }
    }
}

TEST(ClassifyUplink, AnUplinkWithoutIpv6RefusesIpv6) {
    UplinkContext uplink = context();
    uplink.has_ipv6 = false;
    Burst<> received;
    received.push(make_packet(frame(RTE_ETHER_TYPE_IPV6, ipv6_to(uplink6))));
    UplinkClassified out;
    WorkerCounters counters;
    classify_uplink(received, uplink, out, counters);
    EXPECT_EQ(out.inbound.count, 0);
    EXPECT_EQ(counters.dropped(Drop::not_for_us), 1u);
}

}  // namespace
}  // namespace meshgate::dataplane
