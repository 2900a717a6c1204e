// The worker pipeline end to end (classify, decap, route, encap, TX) with simulated clients:
// hub forwarding, the gateway's echo reply, roaming, handoff between two workers, and every
// way a data packet can be refused, each counted under its reason.
#include <gtest/gtest.h>
#include <rte_icmp.h>

#include "tests/support/eal_environment.hpp"
#include "tests/support/hub_fixture.hpp"

namespace meshgate::dataplane {
namespace {

using dataplane::IpAddress;
using test::HubFixture;
using test::ipv4;

std::vector<std::uint8_t> echo_request(const IpAddress& source, const IpAddress& destination) {
    std::vector<std::uint8_t> packet(20 + 8 + 16, 0);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(packet.data());
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(packet.size()));
    ip->time_to_live = 64;
    ip->next_proto_id = 1;
    ip->src_addr = source.v4_network_order();
    ip->dst_addr = destination.v4_network_order();
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto* icmp = reinterpret_cast<rte_icmp_hdr*>(ip + 1);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
    icmp->icmp_ident = rte_cpu_to_be_16(7);
    icmp->icmp_seq_nb = rte_cpu_to_be_16(1);
    icmp->icmp_cksum = static_cast<std::uint16_t>(~rte_raw_cksum(icmp, packet.size() - 20));
    return packet;
}

// Sends `inner` from client `from` through worker 0; returns what each client received,
// opened (the frames are freed).
std::vector<std::vector<std::vector<std::uint8_t>>> send_through_hub(
    HubFixture& hub, unsigned from, const std::vector<std::uint8_t>& inner) {
    rte_mbuf* frame = hub.client_frame(hub.client(from), inner);
    hub.inject(0, &frame, 1);
    hub.run_until_idle();
    return hub.delivered();
}

// Sends one frame from `from` through worker 0 and returns the first that reached `to`, if any.
std::optional<std::vector<std::uint8_t>> forward(HubFixture& hub, unsigned from, unsigned to,
                                                 const std::vector<std::uint8_t>& inner) {
    auto received = send_through_hub(hub, from, inner);
    if (received[to].empty()) {
        return std::nullopt;
    }
    return received[to].front();
}

TEST(Pipeline, HubForwardsBetweenPeersAndDecrementsTtl) {
    HubFixture hub({});
    auto inner =
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, 100);
    auto delivered = forward(hub, 0, 1, inner);
    ASSERT_TRUE(delivered);
    ASSERT_EQ(delivered->size(), 112u) << "padded to 16";
    auto expected = inner;
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(expected.data());
    ip->time_to_live--;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    EXPECT_EQ(std::vector<std::uint8_t>(delivered->begin(), delivered->begin() + 100), expected);
    EXPECT_EQ(hub.slot(0).counters.rx_packets, 1u);
    EXPECT_EQ(hub.slot(1).counters.tx_packets, 1u);
    EXPECT_EQ(hub.worker(0).counters.total_drops(), 0u);
}

TEST(Pipeline, AnswersEchoToTheGatewayTunnelAddress) {
    HubFixture hub({});
    auto delivered =
        forward(hub, 0, 0, echo_request(hub.client(0).tunnel_address, ipv4(10, 100, 0, 1)));
    ASSERT_TRUE(delivered);
    auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(delivered->data());
    EXPECT_EQ(ip->src_addr, ipv4(10, 100, 0, 1).v4_network_order());
    EXPECT_EQ(ip->dst_addr, hub.client(0).tunnel_address.v4_network_order());
    auto* icmp = reinterpret_cast<const rte_icmp_hdr*>(ip + 1);
    EXPECT_EQ(icmp->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
    EXPECT_EQ(rte_raw_cksum(icmp, 24), 0xFFFF) << "ICMP checksum must verify";
    EXPECT_EQ(rte_ipv4_cksum(ip), 0) << "IPv4 header checksum must verify";
}

TEST(Pipeline, RoamsToTheSourceOfAuthenticatedPackets) {
    HubFixture hub({});
    hub.client(0).endpoint = {ipv4(203, 0, 113, 200), 55555};
    auto delivered =
        forward(hub, 0, 0, echo_request(hub.client(0).tunnel_address, ipv4(10, 100, 0, 1)));
    ASSERT_TRUE(delivered) << "the reply must go to the new endpoint";
    EXPECT_EQ(hub.slot(0).read_endpoint().endpoint.port, 55555);
}

// Encap copies the outer headers built when the endpoint was set: an endpoint the gateway
// cannot send to (no WAN address of its family, or none known) drops the packet before it
// takes a send counter, and a usable one set later is used at once.
TEST(Pipeline, SendsOnlyToAnEndpointItHasHeadersFor) {
    HubFixture hub({});
    auto inner =
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, 60);
    const EndpointRecord usable = hub.slot(1).read_endpoint();
    std::uint8_t documentation[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    const EndpointRecord v6{{IpAddress::v6(documentation), 51820}, usable.mac, true};
    const EndpointRecord unknown{};
    for (const EndpointRecord& record : {v6, unknown}) {
        set_peer_endpoint(hub.slot(1), record, hub.shared().addresses);
        const std::uint64_t before = hub.worker(0).counters.dropped(Drop::endpoint_unknown);
        const std::uint64_t counter = hub.slot(1).current.load()->send_counter;
        EXPECT_FALSE(forward(hub, 0, 1, inner));
        EXPECT_EQ(hub.worker(0).counters.dropped(Drop::endpoint_unknown), before + 1);
        EXPECT_EQ(hub.slot(1).current.load()->send_counter, counter)
            << "a packet with nowhere to go must not use a nonce";
    }
    set_peer_endpoint(hub.slot(1), usable, hub.shared().addresses);
    EXPECT_TRUE(forward(hub, 0, 1, inner));
}

// Over IPv6 the outer UDP checksum is mandatory and covers the ciphertext. Encap frames a
// packet before its seal, so the checksum must be finished after it: one computed over the
// plaintext would be wrong on the wire, and the peer's kernel would drop the frame.
TEST(Pipeline, ChecksumsFramesToAnIpv6EndpointOverTheCiphertext) {
    HubFixture hub({});
    const std::uint8_t gateway[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::uint8_t peer[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    hub.shared().addresses.wan_ipv6 = IpAddress::v6(gateway);
    EndpointRecord record = hub.slot(1).read_endpoint();
    record.endpoint = {IpAddress::v6(peer), 51820};
    set_peer_endpoint(hub.slot(1), record, hub.shared().addresses);
    hub.client(1).endpoint = record.endpoint;

    // Long enough for the seal to use its vector code, and two packets so a burst has more
    // than one frame to finish.
    auto inner =
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, 1200);
    rte_mbuf* frames[2] = {hub.client_frame(hub.client(0), inner),
                           hub.client_frame(hub.client(0), inner)};
    hub.inject(0, frames, 2);
    hub.run_until_idle();
    unsigned checked = 0;
    for (rte_mbuf* frame : hub.transmitted(0)) {
        ASSERT_EQ(parse_outer(frame), OuterKind::udp);
        auto* ip = rte_pktmbuf_mtod_offset(frame, const rte_ipv6_hdr*, sizeof(rte_ether_hdr));
        EXPECT_EQ(rte_ipv6_udptcp_cksum_verify(ip, ip + 1), 0) << "UDP checksum must verify";
        EXPECT_TRUE(hub.open_frame(hub.client(1), frame)) << "the frame must open";
        rte_pktmbuf_free(frame);
        ++checked;
    }
    EXPECT_EQ(checked, 2u);
}

TEST(Pipeline, TwoWorkersHandOffToTheOwner) {
    HubFixture hub({.peers = 4, .workers = 2});
    // Peer 1 is owned by worker 1 but its packets arrive on worker 0; peer 1 -> peer 2
    // (owned by worker 0) crosses back.
    auto inner =
        HubFixture::inner_udp(hub.client(1).tunnel_address, hub.client(2).tunnel_address, 60);
    auto delivered = forward(hub, 1, 2, inner);
    ASSERT_TRUE(delivered);
    EXPECT_GE(hub.worker(0).counters.handed_off + hub.worker(1).counters.handed_off, 2u);
    EXPECT_EQ(hub.slot(1).counters.rx_packets, 1u);
}

// Two copies of one message in a single burst both pass the check made before the burst is
// opened; the second is refused where the first is recorded, and only one is delivered.
TEST(Pipeline, RefusesACopyInTheSameBurst) {
    HubFixture hub({});
    auto inner =
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, 60);
    rte_mbuf* frames[2] = {hub.client_frame(hub.client(0), inner, 7),
                           hub.client_frame(hub.client(0), inner, 7)};
    hub.inject(0, frames, 2);
    hub.run_until_idle();
    EXPECT_EQ(hub.delivered()[1].size(), 1u);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::replayed_counter), 1u);
    EXPECT_EQ(hub.slot(0).counters.rx_packets, 1u);
}

struct Refusal {
    const char* name;
    Drop reason;
};

TEST(Pipeline, RefusesAndCountsEveryBadDataPacket) {
    HubFixture hub({.peers = 3});
    hub.slot(2).permissions = 0;  // peer 2 may not talk to other peers
    auto& a = hub.client(0);
    auto& b = hub.client(1);
    auto to_b = HubFixture::inner_udp(a.tunnel_address, b.tunnel_address, 80);

    auto send = [&hub](rte_mbuf* frame) {
        hub.inject(0, &frame, 1);
        hub.run_until_idle();
        for (rte_mbuf* sent : hub.transmitted(0)) {
            rte_pktmbuf_free(sent);
        }
    };
    auto expect_drop = [&hub](Drop reason, const char* what) {
        EXPECT_EQ(hub.worker(0).counters.dropped(reason), 1u) << what << ": " << drop_name(reason);
    };

    send(hub.client_frame(a, to_b, 1000));
    send(hub.client_frame(a, to_b, 1000));
    expect_drop(Drop::replayed_counter, "replayed counter");

    auto spoofed = HubFixture::inner_udp(ipv4(10, 9, 9, 9), b.tunnel_address, 80);
    send(hub.client_frame(a, spoofed));
    expect_drop(Drop::inner_source_not_allowed, "spoofed inner source");
    // B's own address is no more A's to use, though B's is a /32 decap knows without a lookup.
    auto as_b = HubFixture::inner_udp(b.tunnel_address, hub.client(2).tunnel_address, 80);
    send(hub.client_frame(a, as_b));
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::inner_source_not_allowed), 2u)
        << "another peer's address as the source";

    send(hub.client_frame(a, HubFixture::inner_udp(a.tunnel_address, ipv4(192, 0, 2, 1), 80)));
    expect_drop(Drop::no_route, "destination outside every peer");

    send(hub.client_frame(
        hub.client(2), HubFixture::inner_udp(hub.client(2).tunnel_address, b.tunnel_address, 80)));
    expect_drop(Drop::policy_refused, "peer without the peers permission");

    send(hub.client_frame(a, HubFixture::inner_udp(a.tunnel_address, b.tunnel_address, 80, 1)));
    expect_drop(Drop::ttl_exceeded, "TTL 1");

    rte_mbuf* forged = hub.client_frame(a, to_b);
    rte_pktmbuf_mtod(forged, std::uint8_t*)[rte_pktmbuf_data_len(forged) - 1] ^= 1;
    send(forged);
    expect_drop(Drop::decrypt_failed, "flipped tag bit");

    std::uint32_t saved = a.gateway_index;
    a.gateway_index = 0xDEAD;
    send(hub.client_frame(a, to_b));
    a.gateway_index = saved;
    expect_drop(Drop::unknown_receiver_index, "unknown receiver index");

    std::vector<std::uint8_t> not_ip(48, 0x11);
    send(hub.client_frame(a, not_ip));
    expect_drop(Drop::inner_malformed, "decrypts to garbage");

    // A keepalive is consumed silently, and is not a drop.
    std::uint64_t drops_before = hub.worker(0).counters.total_drops();
    send(hub.client_frame(a, {}));
    EXPECT_EQ(hub.worker(0).counters.total_drops(), drops_before);

    // Nothing was forwarded except the first packet to B.
    EXPECT_EQ(hub.slot(1).counters.tx_packets, 1u);
}

// Checks `error` is the ICMP error of `type`/`code` from the gateway's tunnel address to
// client 0, reporting `mtu`, and quoting the header of client 0's packet to `quoted_to`
// (client 1 when not given).
void expect_icmp_error(HubFixture& hub, const std::vector<std::uint8_t>& error, std::uint8_t type,
                       std::uint8_t code, std::uint16_t mtu,
                       std::optional<IpAddress> quoted_to = std::nullopt) {
    ASSERT_GE(error.size(), 20u + 8u + 20u + 8u);
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(error.data());
    EXPECT_EQ(ip->src_addr, ipv4(10, 100, 0, 1).v4_network_order());
    EXPECT_EQ(ip->dst_addr, hub.client(0).tunnel_address.v4_network_order());
    EXPECT_EQ(error[20], type);
    EXPECT_EQ(error[21], code);
    EXPECT_EQ(error[26] << 8 | error[27], mtu);
    const auto* quoted = reinterpret_cast<const rte_ipv4_hdr*>(error.data() + 28);
    EXPECT_EQ(quoted->src_addr, hub.client(0).tunnel_address.v4_network_order());
    EXPECT_EQ(quoted->dst_addr,
              quoted_to.value_or(hub.client(1).tunnel_address).v4_network_order());
}

// The hub is a router on the path between two peers: a packet whose TTL runs out there gets
// "time exceeded" back from the gateway's tunnel address (traceroute's hop), not silence.
TEST(Pipeline, HubAnswersAnExpiredTtlWithTimeExceeded) {
    HubFixture hub({});
    auto received = send_through_hub(
        hub, 0,
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, 80, 1));
    EXPECT_TRUE(received[1].empty());
    ASSERT_EQ(received[0].size(), 1u);
    expect_icmp_error(hub, received[0][0], 11, 0, 0);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::ttl_exceeded), 1u);
    EXPECT_EQ(hub.worker(0).counters.icmp_errors_sent, 1u);
}

// A peer whose own MTU is above the tunnel's sends a packet too big for the tunnel to another
// peer. With DF set it gets "fragmentation needed" with the tunnel's MTU (path MTU discovery
// between peers); without, the hub splits it and the other peer gets the fragments.
TEST(Pipeline, HubAnswersOversizedDontFragmentPacketsAndSplitsTheRest) {
    HubFixture hub({});
    const std::uint16_t mtu = hub.shared().tunnel_mtu;
    auto big = HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address,
                                     mtu + 80u);

    auto received = send_through_hub(hub, 0, big);
    EXPECT_TRUE(received[0].empty());
    ASSERT_EQ(received[1].size(), 2u);
    std::size_t payload = 0;
    for (const auto& fragment : received[1]) {
        EXPECT_LE(fragment.size(), mtu);  // padding included
        const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(fragment.data());
        payload += rte_be_to_cpu_16(header->total_length) - 20u;
    }
    EXPECT_EQ(payload, big.size() - 20);

    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(big.data());
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    received = send_through_hub(hub, 0, big);
    EXPECT_TRUE(received[1].empty());
    ASSERT_EQ(received[0].size(), 1u);
    expect_icmp_error(hub, received[0][0], 3, 4, mtu);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::tunnel_too_big), 1u);

    // A packet that fits goes through with DF set.
    received = send_through_hub(
        hub, 0,
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, mtu));
    EXPECT_EQ(received[1].size(), 1u);
}

// A hub without an uplink has nowhere to send a packet no peer's allowed IPs take: its sender
// gets "host unreachable" from the gateway's tunnel address, as kernel WireGuard answers a
// packet it has no peer for, and fails at once instead of timing out.
TEST(Pipeline, HubAnswersADestinationNoPeerHoldsWithHostUnreachable) {
    HubFixture hub({});
    const IpAddress nowhere = ipv4(192, 0, 2, 1);
    auto received =
        send_through_hub(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, nowhere, 80));
    EXPECT_TRUE(received[1].empty());
    ASSERT_EQ(received[0].size(), 1u);
    expect_icmp_error(hub, received[0][0], 3, 1, 0, nowhere);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::no_route), 1u);
}

TEST(Pipeline, PacketsForAPeerWithoutSessionGoToTheControlThread) {
    HubFixture hub({});
    hub.slot(1).current.store(nullptr);
    auto inner =
        HubFixture::inner_udp(hub.client(0).tunnel_address, hub.client(1).tunnel_address, 64);
    EXPECT_FALSE(forward(hub, 0, 1, inner));
    EXPECT_EQ(rte_ring_count(hub.to_control()), 1u);
    EXPECT_EQ(hub.worker(0).counters.to_control, 1u);
}

}  // namespace
}  // namespace meshgate::dataplane
