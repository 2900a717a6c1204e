// Classify: every kind of frame lands in the right sub-burst or is dropped under the right
// reason, and counters add up.
#include "dataplane/classify.hpp"

#include <gtest/gtest.h>
#include <rte_arp.h>

#include <random>
#include <string>

#include "dataplane/headers.hpp"
#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

using test::make_packet;

constexpr std::uint16_t listen_port = 51820;
const rte_ether_addr gateway_mac = {{0x02, 0, 0, 0, 0, 1}};
const rte_ether_addr client_mac = {{0x02, 0, 0, 0, 0, 2}};

std::uint32_t v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    std::uint8_t bytes[4] = {a, b, c, d};
    std::uint32_t value;
    std::memcpy(&value, bytes, 4);
    return value;
}

ClassifyContext gateway_context() {
    ClassifyContext context;
    context.mac = gateway_mac;
    context.ipv4 = v4(198, 51, 100, 1);
    context.ipv6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    context.has_ipv6 = true;
    context.listen_port = listen_port;
    return context;
}

std::vector<std::uint8_t> wireguard_message(std::uint32_t type, std::size_t length) {
    std::vector<std::uint8_t> message(length, 0x5a);
    for (std::size_t i = 0; i < 4 && i < length; ++i) {
        message[i] = static_cast<std::uint8_t>(type >> (8 * i));
    }
    return message;
}

rte_mbuf* udp_to(bool v6, const std::vector<std::uint8_t>& payload,
                 std::uint16_t port = listen_port, std::uint8_t last_octet = 1) {
    ClassifyContext context = gateway_context();
    OuterAddresses addresses{client_mac, gateway_mac, {}, {}};
    if (v6) {
        std::uint8_t source[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
        auto destination = context.ipv6;
        destination[15] = last_octet;
        addresses.source = {IpAddress::v6(source), 40000};
        addresses.destination = {IpAddress::v6(destination.data()), port};
    } else {
        addresses.source = {IpAddress::v4(v4(198, 51, 100, 2)), 40000};
        addresses.destination = {IpAddress::v4(v4(198, 51, 100, last_octet)), port};
    }
    rte_mbuf* packet = make_packet(payload);
    EXPECT_TRUE(prepend_outer(packet, addresses));
    return packet;
}

rte_mbuf* arp_request() {
    std::vector<std::uint8_t> frame(sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr), 0);
    auto* ethernet = reinterpret_cast<rte_ether_hdr*>(frame.data());
    std::memset(&ethernet->dst_addr, 0xff, 6);
    ethernet->src_addr = client_mac;
    ethernet->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    return make_packet(frame);
}

rte_mbuf* icmpv6(std::uint8_t type) {
    rte_mbuf* packet = udp_to(true, std::vector<std::uint8_t>(24, 0));
    auto* ip = rte_pktmbuf_mtod_offset(packet, rte_ipv6_hdr*, sizeof(rte_ether_hdr));
    ip->proto = 58;
    *reinterpret_cast<std::uint8_t*>(ip + 1) = type;
    return packet;
}

enum class Expect { data, handshake, neighbour, dropped };

struct Row {
    std::string name;
    rte_mbuf* packet;
    Expect expect;
    Drop reason = Drop::not_ip;
};

TEST(Classify, SortsEveryKindOfFrame) {
    std::vector<Row> rows;
    for (bool v6 : {false, true}) {
        std::string family = v6 ? " v6" : " v4";
        rows.push_back({"keepalive" + family, udp_to(v6, wireguard_message(4, 32)), Expect::data});
        rows.push_back({"data" + family, udp_to(v6, wireguard_message(4, 1452)), Expect::data});
        rows.push_back(
            {"initiation" + family, udp_to(v6, wireguard_message(1, 148)), Expect::handshake});
        rows.push_back(
            {"response" + family, udp_to(v6, wireguard_message(2, 92)), Expect::handshake});
        rows.push_back(
            {"cookie" + family, udp_to(v6, wireguard_message(3, 64)), Expect::handshake});
        rows.push_back({"short data" + family, udp_to(v6, wireguard_message(4, 31)),
                        Expect::dropped, Drop::bad_message_length});
        rows.push_back({"long initiation" + family, udp_to(v6, wireguard_message(1, 149)),
                        Expect::dropped, Drop::bad_message_length});
        rows.push_back({"short response" + family, udp_to(v6, wireguard_message(2, 91)),
                        Expect::dropped, Drop::bad_message_length});
        rows.push_back({"type 5" + family, udp_to(v6, wireguard_message(5, 64)), Expect::dropped,
                        Drop::unknown_message_type});
        rows.push_back({"reserved bytes set" + family, udp_to(v6, wireguard_message(0x0104, 64)),
                        Expect::dropped, Drop::unknown_message_type});
        rows.push_back(
            {"empty udp" + family, udp_to(v6, {}), Expect::dropped, Drop::unknown_message_type});
        rows.push_back({"other port" + family, udp_to(v6, wireguard_message(4, 64), 53),
                        Expect::dropped, Drop::not_for_us});
        rows.push_back({"other address" + family,
                        udp_to(v6, wireguard_message(4, 64), listen_port, 9), Expect::dropped,
                        Drop::not_for_us});
    }
    rows.push_back({"arp", arp_request(), Expect::neighbour});
    rows.push_back({"neighbour solicitation", icmpv6(135), Expect::neighbour});
    rows.push_back({"neighbour advertisement", icmpv6(136), Expect::neighbour});
    rows.push_back({"echo request v6", icmpv6(128), Expect::dropped, Drop::not_for_us});
    rows.push_back({"garbage", make_packet({1, 2, 3}), Expect::dropped, Drop::malformed_outer});
    std::vector<std::uint8_t> lldp(60, 0);
    lldp[12] = 0x88;
    lldp[13] = 0xcc;
    rows.push_back({"lldp", make_packet(lldp), Expect::dropped, Drop::not_ip});

    ClassifyContext context = gateway_context();
    for (const Row& row : rows) {
        ASSERT_NE(row.packet, nullptr) << row.name;
        Burst<> received;
        received.push(row.packet);
        Classified out;
        WorkerCounters counters;
        classify(received, context, out, counters);
        EXPECT_EQ(counters.rx_packets, 1u) << row.name;
        EXPECT_EQ(out.data.count, row.expect == Expect::data ? 1 : 0) << row.name;
        EXPECT_EQ(out.handshake.count, row.expect == Expect::handshake ? 1 : 0) << row.name;
        EXPECT_EQ(out.neighbour.count, row.expect == Expect::neighbour ? 1 : 0) << row.name;
        if (row.expect == Expect::dropped) {
            EXPECT_EQ(counters.dropped(row.reason), 1u)
                << row.name << ": " << drop_name(row.reason);
            EXPECT_EQ(counters.total_drops(), 1u) << row.name;
        } else {
            EXPECT_EQ(counters.total_drops(), 0u) << row.name;
        }
        for (auto* burst : {&out.data, &out.handshake, &out.neighbour}) {
            for (std::uint16_t i = 0; i < burst->count; ++i) {
                rte_pktmbuf_free(burst->packets[i]);
            }
        }
    }
}

TEST(Classify, FullMixedBurstKeepsOrderWithinEachClass) {
    Burst<> received;
    for (std::uint16_t i = 0; i < burst_size; ++i) {
        auto message = wireguard_message(i % 3 == 0 ? 1 : 4, i % 3 == 0 ? 148 : 64 + 16 * (i % 5));
        message[4] = static_cast<std::uint8_t>(i);  // tag each packet with its arrival position
        received.push(udp_to(i % 2 == 0, message));
    }
    Classified out;
    WorkerCounters counters;
    classify(received, gateway_context(), out, counters);
    EXPECT_EQ(out.data.count + out.handshake.count, burst_size);
    EXPECT_EQ(out.handshake.count, 11);
    for (auto* burst : {&out.data, &out.handshake}) {
        int previous = -1;
        for (std::uint16_t i = 0; i < burst->count; ++i) {
            int position = udp_payload(burst->packets[i])[4];
            EXPECT_GT(position, previous);
            previous = position;
            rte_pktmbuf_free(burst->packets[i]);
        }
    }
    EXPECT_EQ(counters.rx_packets, burst_size);
}

// The one-pass check for the common frame must agree with the general parse on every frame:
// it may answer "data" only where the general parse does (with the same offsets), and must
// answer it for every option-less IPv4 frame the general parse calls data, or the fast path
// would be a second classifier rather than a shortcut. Frames: transport data, handshakes and
// other traffic, with up to three bytes of the headers and message type changed, or cut short.
TEST(Classify, FastPathAgreesWithTheGeneralParse) {
    std::mt19937 rng(17);
    const ClassifyContext context = gateway_context();
    std::size_t fast = 0;
    for (int round = 0; round < 20000; ++round) {
        const std::uint32_t type = round % 4 == 0 ? 1 + rng() % 5 : 4;
        const std::size_t length = type == 1 ? 148 : 16 + rng() % 80;
        rte_mbuf* packet = udp_to(round % 8 == 0, wireguard_message(type, length),
                                  rng() % 16 == 0 ? 53 : listen_port, rng() % 16 == 0 ? 9 : 1);
        auto* frame = rte_pktmbuf_mtod(packet, std::uint8_t*);
        const unsigned changes = rng() % 4;
        for (unsigned c = 0; c < changes; ++c) {
            frame[rng() % 50] = static_cast<std::uint8_t>(rng());
        }
        if (rng() % 8 == 0) {
            rte_pktmbuf_trim(packet,
                             static_cast<std::uint16_t>(rng() % rte_pktmbuf_data_len(packet)));
        }
        const bool shortcut = is_transport_data_v4(packet, context);
        const std::uint64_t offsets = packet->tx_offload;
        const FrameVerdict general = classify_frame(packet, context);
        const bool v4 = rte_pktmbuf_data_len(packet) >= sizeof(rte_ether_hdr) &&
                        reinterpret_cast<rte_ether_hdr*>(frame)->ether_type ==
                            rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        const bool expected =
            general.kind == FrameClass::data && v4 && packet->l3_len == sizeof(rte_ipv4_hdr);
        ASSERT_EQ(shortcut, expected) << "round " << round;
        if (shortcut) {
            ASSERT_EQ(offsets, packet->tx_offload) << "round " << round;
            ++fast;
        }
        rte_pktmbuf_free(packet);
    }
    EXPECT_GT(fast, 2000u) << "the rounds must exercise the fast path";
}

TEST(DropReasons, EveryReasonHasANameAndHelp) {
    for (std::size_t i = 0; i < drop_reason_count; ++i) {
        auto reason = static_cast<Drop>(i);
        EXPECT_FALSE(drop_name(reason).empty());
        EXPECT_FALSE(drop_help(reason).empty());
    }
    EXPECT_EQ(drop_name(Drop::decrypt_failed), "decrypt_failed");
}

}  // namespace
}  // namespace meshgate::dataplane
