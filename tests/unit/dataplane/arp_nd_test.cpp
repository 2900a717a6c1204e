// ARP and neighbour discovery: answers for our addresses, learns only what it should,
// resolves what it is asked to, forgets, and stays bounded under a flood.
#include "dataplane/arp_nd.hpp"

#include <gtest/gtest.h>
#include <rte_arp.h>
#include <rte_ip.h>

#include <cstring>

namespace meshgate::dataplane {
namespace {

const rte_ether_addr our_mac = {{0x02, 0, 0, 0, 0, 1}};
const rte_ether_addr their_mac = {{0x02, 0, 0, 0, 0, 2}};

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress address;
    address.bytes[0] = a, address.bytes[1] = b, address.bytes[2] = c, address.bytes[3] = d;
    return address;
}

IpAddress v6(std::uint8_t last) {
    std::uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8};
    bytes[15] = last;
    return IpAddress::v6(bytes);
}

ArpNd gateway() {
    return ArpNd({our_mac, v4(198, 51, 100, 1), v6(1)});
}

// Another host's view: its own ArpNd builds the frames we receive.
ArpNd host(std::uint8_t last) {
    return ArpNd({their_mac, v4(198, 51, 100, last), v6(last)});
}

const rte_arp_hdr& arp_of(const Frame& frame) {
    return *reinterpret_cast<const rte_arp_hdr*>(frame.data() + sizeof(rte_ether_hdr));
}

TEST(Arp, AnswersRequestsForOurAddressAndLearnsTheAsker) {
    ArpNd us = gateway();
    ArpNd them = host(2);
    auto request = them.request(v4(198, 51, 100, 1), 0);
    ASSERT_TRUE(request);
    auto reply = us.on_frame(request->data(), request->size(), 10);
    ASSERT_TRUE(reply);
    const rte_arp_hdr& arp = arp_of(*reply);
    EXPECT_EQ(arp.arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REPLY));
    EXPECT_TRUE(rte_is_same_ether_addr(&arp.arp_data.arp_sha, &our_mac));
    EXPECT_EQ(arp.arp_data.arp_sip, v4(198, 51, 100, 1).v4_network_order());
    EXPECT_TRUE(rte_is_same_ether_addr(&arp.arp_data.arp_tha, &their_mac));
    auto* ethernet = reinterpret_cast<const rte_ether_hdr*>(reply->data());
    EXPECT_TRUE(rte_is_same_ether_addr(&ethernet->dst_addr, &their_mac));

    auto learned = us.lookup(v4(198, 51, 100, 2), 20);
    ASSERT_TRUE(learned);
    EXPECT_TRUE(rte_is_same_ether_addr(&*learned, &their_mac));
}

TEST(Arp, IgnoresRequestsForOthersAndDoesNotLearnStrangers) {
    ArpNd us = gateway();
    ArpNd them = host(2);
    auto request = them.request(v4(198, 51, 100, 9), 0);
    EXPECT_FALSE(us.on_frame(request->data(), request->size(), 10));
    EXPECT_FALSE(us.lookup(v4(198, 51, 100, 2), 20));
    EXPECT_EQ(us.size(), 0u);
}

TEST(Arp, ResolvesANextHopAndRateLimitsRequests) {
    ArpNd us = gateway();
    ArpNd next_hop = host(254);
    auto request = us.request(v4(198, 51, 100, 254), 0);
    ASSERT_TRUE(request);
    EXPECT_EQ(arp_of(*request).arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REQUEST));
    EXPECT_FALSE(us.request(v4(198, 51, 100, 254), ArpNd::retry_ns / 2)) << "asked again too soon";

    auto reply = next_hop.on_frame(request->data(), request->size(), 5);
    ASSERT_TRUE(reply);
    EXPECT_FALSE(us.on_frame(reply->data(), reply->size(), 6));
    auto mac = us.lookup(v4(198, 51, 100, 254), 7);
    ASSERT_TRUE(mac);
    EXPECT_TRUE(rte_is_same_ether_addr(&*mac, &their_mac));

    // Stale after reachable_ns; forgotten after four times that.
    EXPECT_FALSE(us.lookup(v4(198, 51, 100, 254), 7 + ArpNd::reachable_ns + 1));
    us.age(10 + 5 * ArpNd::reachable_ns);
    EXPECT_EQ(us.size(), 0u);
}

TEST(Arp, RejectsMalformedFrames) {
    ArpNd us = gateway();
    auto request = host(2).request(v4(198, 51, 100, 1), 0);
    Frame truncated(request->begin(), request->begin() + 20);
    EXPECT_FALSE(us.on_frame(truncated.data(), truncated.size(), 0));
    Frame wrong_lengths = *request;
    reinterpret_cast<rte_arp_hdr*>(wrong_lengths.data() + sizeof(rte_ether_hdr))->arp_plen = 16;
    EXPECT_FALSE(us.on_frame(wrong_lengths.data(), wrong_lengths.size(), 0));
    EXPECT_EQ(us.size(), 0u);
}

TEST(Arp, FloodOfAskersStaysBounded) {
    ArpNd us = gateway();
    for (unsigned i = 0; i < 6000; ++i) {
        ArpNd asker({their_mac,
                     v4(10, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), 1),
                     std::nullopt});
        auto request = asker.request(v4(198, 51, 100, 1), 0);
        us.on_frame(request->data(), request->size(), i);
    }
    EXPECT_LE(us.size(), 4096u);
}

TEST(NeighbourDiscovery, AdvertisesOurAddressWithValidChecksum) {
    ArpNd us = gateway();
    ArpNd them = host(2);
    auto solicitation = them.request(v6(1), 0);
    ASSERT_TRUE(solicitation);
    auto advertisement = us.on_frame(solicitation->data(), solicitation->size(), 1);
    ASSERT_TRUE(advertisement);
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(advertisement->data() + sizeof(rte_ether_hdr));
    EXPECT_EQ(ip->hop_limits, 255);
    EXPECT_EQ(std::memcmp(ip->dst_addr, v6(2).bytes.data(), 16), 0);
    EXPECT_EQ(rte_ipv6_udptcp_cksum_verify(ip, ip + 1), 0);
    auto* icmp = reinterpret_cast<const std::uint8_t*>(ip + 1);
    EXPECT_EQ(icmp[0], 136);
    EXPECT_EQ(icmp[4] & 0x60, 0x60) << "solicited and override flags";
    EXPECT_EQ(std::memcmp(icmp + 8, v6(1).bytes.data(), 16), 0) << "target is our address";
    EXPECT_EQ(std::memcmp(icmp + 24 + 2, our_mac.addr_bytes, 6), 0) << "target link address";

    // The solicitation taught us their address; their side learns ours from our answer.
    EXPECT_TRUE(us.lookup(v6(2), 2));
    EXPECT_FALSE(them.on_frame(advertisement->data(), advertisement->size(), 2));
    auto learned = them.lookup(v6(1), 3);
    ASSERT_TRUE(learned);
    EXPECT_TRUE(rte_is_same_ether_addr(&*learned, &our_mac));
}

TEST(NeighbourDiscovery, SolicitsTheSolicitedNodeGroup) {
    ArpNd us = gateway();
    auto solicitation = us.request(v6(0x42), 0);
    ASSERT_TRUE(solicitation);
    auto* ethernet = reinterpret_cast<const rte_ether_hdr*>(solicitation->data());
    const std::uint8_t group_mac[6] = {0x33, 0x33, 0xff, 0, 0, 0x42};
    EXPECT_EQ(std::memcmp(ethernet->dst_addr.addr_bytes, group_mac, 6), 0);
    auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(ethernet + 1);
    const std::uint8_t group[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x42};
    EXPECT_EQ(std::memcmp(ip->dst_addr, group, 16), 0);
}

TEST(NeighbourDiscovery, IgnoresForwardedOrCorruptSolicitations) {
    ArpNd us = gateway();
    auto solicitation = host(2).request(v6(1), 0);
    Frame forwarded = *solicitation;
    reinterpret_cast<rte_ipv6_hdr*>(forwarded.data() + sizeof(rte_ether_hdr))->hop_limits = 64;
    EXPECT_FALSE(us.on_frame(forwarded.data(), forwarded.size(), 0));
    Frame corrupt = *solicitation;
    corrupt.back() ^= 1;
    EXPECT_FALSE(us.on_frame(corrupt.data(), corrupt.size(), 0));
    Frame truncated(solicitation->begin(), solicitation->end() - 30);
    EXPECT_FALSE(us.on_frame(truncated.data(), truncated.size(), 0));
    EXPECT_EQ(us.size(), 0u);
}

}  // namespace
}  // namespace meshgate::dataplane
