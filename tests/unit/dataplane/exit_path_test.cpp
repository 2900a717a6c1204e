// The exit path through the real worker loop: packets of peers with `exit` leave on the
// uplink masqueraded and framed for the next hop, answers come back sealed to the peer (on the
// worker that owns their port), and everything refused is counted by reason, with the ICMP
// errors the gateway owes the sender (time exceeded, fragmentation needed) sealed back, as
// many as the worker's ICMP budget allows. Pings to the uplink address are answered.
#include "dataplane/exit_path.hpp"

#include <gtest/gtest.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "tests/support/eal_environment.hpp"
#include "tests/support/hub_fixture.hpp"
#include "tests/support/ipv4_options.hpp"

namespace meshgate::dataplane {
namespace {

using test::HubFixture;
using test::ipv4;
using Bytes = std::vector<std::uint8_t>;

const IpAddress internet = ipv4(198, 51, 100, 77);

HubFixture::Options exit_options(unsigned workers = 1) {
    return {.peers = 2, .workers = workers, .permissions = permission_exit, .exit = true};
}

// Sends `inner` from client `from` through worker 0 and runs the workers dry.
void send(HubFixture& hub, unsigned from, const Bytes& inner) {
    rte_mbuf* frame = hub.client_frame(hub.client(from), inner);
    hub.inject(0, &frame, 1);
    hub.run_until_idle();
}

std::vector<Bytes> uplink_frames(HubFixture& hub) {
    std::vector<Bytes> frames;
    for (unsigned w = 0; w < hub.shared().handoff->workers(); ++w) {
        for (rte_mbuf* frame : hub.uplink_transmitted(w)) {
            frames.push_back(test::packet_bytes(frame));
            rte_pktmbuf_free(frame);
        }
    }
    return frames;
}

// Sends a UDP packet of `size` bytes from client `from` to the internet. Returns the one
// packet that left on the uplink, Ethernet stripped; empty, with a test failure, unless
// exactly one did.
Bytes send_out(HubFixture& hub, unsigned from, unsigned size = 100) {
    send(hub, from, HubFixture::inner_udp(hub.client(from).tunnel_address, internet, size));
    const auto frames = uplink_frames(hub);
    if (frames.size() != 1) {
        ADD_FAILURE() << frames.size() << " frames left on the uplink, not 1";
        return {};
    }
    return Bytes(frames[0].begin() + 14, frames[0].end());
}

// What reached client `to` through the tunnel, opened.
std::vector<Bytes> delivered(HubFixture& hub, unsigned to) {
    return hub.delivered()[to];
}

std::uint16_t udp_port(const Bytes& ip, bool source) {
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(ip.data() + (ip[0] & 0x0F) * 4);
    return rte_be_to_cpu_16(source ? udp->src_port : udp->dst_port);
}

// The internet's answer to a translated packet (IPv4 UDP): addresses and ports swapped.
Bytes answer_to(const Bytes& translated_ip, unsigned size) {
    Bytes answer = HubFixture::inner_udp(internet, HubFixture::uplink_ipv4, size);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(answer.data() + 20);
    udp->src_port = rte_cpu_to_be_16(udp_port(translated_ip, false));
    udp->dst_port = rte_cpu_to_be_16(udp_port(translated_ip, true));
    return answer;
}

// The same answer as a frame from the router.
rte_mbuf* answer_frame(const Bytes& translated_ip, unsigned size = 60) {
    return HubFixture::from_router(answer_to(translated_ip, size));
}

// Out through the uplink, masqueraded, to the router's MAC; and the answer back to the peer.
TEST(ExitPath, OutboundIsMasqueradedAndTheAnswerComesBackSealed) {
    HubFixture hub(exit_options());
    send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 100));
    auto frames = uplink_frames(hub);
    ASSERT_EQ(frames.size(), 1u);
    const Bytes& frame = frames[0];
    EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 6),
              Bytes(HubFixture::router_mac.addr_bytes, HubFixture::router_mac.addr_bytes + 6));
    EXPECT_EQ(Bytes(frame.begin() + 6, frame.begin() + 12),
              Bytes(HubFixture::uplink_mac.addr_bytes, HubFixture::uplink_mac.addr_bytes + 6));
    const Bytes ip(frame.begin() + 14, frame.end());
    const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(ip.data());
    EXPECT_EQ(header->src_addr, HubFixture::uplink_ipv4.v4_network_order());
    EXPECT_EQ(header->dst_addr, internet.v4_network_order());
    EXPECT_EQ(header->time_to_live, 63) << "a router decrements TTL";
    EXPECT_EQ(rte_ipv4_cksum(header), 0) << "IPv4 header checksum must verify";
    EXPECT_TRUE(hub.exit_worker(0).nat->ports().contains(udp_port(ip, true)));
    EXPECT_EQ(hub.exit().counters[0].packets_out, 1u);

    hub.inject_uplink(0, answer_frame(ip));
    hub.run_until_idle();
    auto back = delivered(hub, 0);
    ASSERT_EQ(back.size(), 1u);
    const auto* inner = reinterpret_cast<const rte_ipv4_hdr*>(back[0].data());
    EXPECT_EQ(inner->dst_addr, hub.client(0).tunnel_address.v4_network_order());
    EXPECT_EQ(udp_port(back[0], false), 1000) << "the peer's own port again";
    EXPECT_EQ(hub.exit().counters[0].packets_in, 1u);
    EXPECT_EQ(hub.worker(0).counters.total_drops(), 0u);
}

// The tunnel pads what it seals to a multiple of 16 with zeros (whitepaper 5.4.6), never with
// what the buffer held past the packet: here a trailer after the IP packet, which the uplink
// strips, of bytes that are not zero.
TEST(ExitPath, AnswersArePaddedWithZerosNotWithTheFramesTrailer) {
    HubFixture hub(exit_options());
    const Bytes translated = send_out(hub, 0);
    Bytes answer = answer_to(translated, 50);
    const std::size_t length = answer.size();
    answer.resize(length + 30, 0xAA);
    hub.inject_uplink(0, HubFixture::from_router(answer));
    hub.run_until_idle();
    const auto back = delivered(hub, 0);
    ASSERT_EQ(back.size(), 1u);
    ASSERT_EQ(back[0].size(), 64u) << "50 bytes padded to 64";
    EXPECT_EQ(Bytes(back[0].begin() + static_cast<std::ptrdiff_t>(length), back[0].end()),
              Bytes(64 - length, 0));
}

// Peer 1 belongs to worker 1, so its flow takes a port of worker 1's slice; the answer
// arriving on worker 0's uplink queue is handed to worker 1, which seals it.
TEST(ExitPath, ReturnTrafficIsSteeredToTheWorkerOwningItsPort) {
    HubFixture hub(exit_options(2));
    const Bytes ip = send_out(hub, 1);
    ASSERT_FALSE(ip.empty());
    EXPECT_TRUE(hub.exit_worker(1).nat->ports().contains(udp_port(ip, true)));

    const std::uint64_t handed_before = hub.worker(0).counters.handed_off;
    hub.inject_uplink(0, answer_frame(ip));
    hub.run_until_idle();
    EXPECT_EQ(hub.worker(0).counters.handed_off, handed_before + 1);
    EXPECT_EQ(hub.transmitted(0).size(), 0u) << "worker 0 holds no flow and no counter";
    auto sealed = hub.transmitted(1);
    ASSERT_EQ(sealed.size(), 1u);
    EXPECT_TRUE(hub.open_frame(hub.client(1), sealed[0]));
    rte_pktmbuf_free(sealed[0]);
}

// `ip` (IPv4) as one fragment of its datagram: the flags and offset field set, the header
// checksum made right again.
Bytes as_fragment(Bytes ip, std::uint16_t flags_and_offset) {
    auto* header = reinterpret_cast<rte_ipv4_hdr*>(ip.data());
    header->fragment_offset = rte_cpu_to_be_16(flags_and_offset);
    header->hdr_checksum = 0;
    header->hdr_checksum = rte_ipv4_cksum(header);
    return ip;
}

// Checks that `pieces` (IPv4 packets, each after `skip` bytes of framing) are one datagram's
// fragments in order, each within `mtu` bytes, with a good header checksum and the given
// addresses. Returns the data bytes they carry together (by the total length field: what the
// tunnel delivers is padded to 16 bytes).
std::size_t fragment_data(const std::vector<Bytes>& pieces, std::size_t skip, std::size_t mtu,
                          const IpAddress& source, const IpAddress& destination) {
    std::size_t data = 0;
    for (const Bytes& frame : pieces) {
        const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(frame.data() + skip);
        const std::size_t total = rte_be_to_cpu_16(header->total_length);
        EXPECT_LE(total, mtu);
        EXPECT_EQ(header->src_addr, source.v4_network_order());
        EXPECT_EQ(header->dst_addr, destination.v4_network_order());
        EXPECT_EQ(rte_ipv4_cksum(header), 0) << "IPv4 header checksum must verify";
        EXPECT_EQ((rte_be_to_cpu_16(header->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) * 8u,
                  data);
        data += total - rte_ipv4_hdr_len(header);
    }
    return data;
}

// A fragmented datagram each way, with two workers: peer 1's fragments reach its owner, worker
// 1, through worker 0; the answer's fragments arrive on worker 0's uplink queue, the first
// steered by its port, the last by what steering the first left behind. All arrive in one
// burst, the later fragment right behind its first.
TEST(ExitPath, FragmentedDatagramsCrossTheExitBothWays) {
    HubFixture hub(exit_options(2));
    const Bytes whole = HubFixture::inner_udp(hub.client(1).tunnel_address, internet, 200);
    rte_mbuf* out[2] = {hub.client_frame(hub.client(1), as_fragment(whole, 0x2000)),
                        hub.client_frame(hub.client(1), as_fragment(whole, 100))};
    hub.inject(0, out, 2);
    hub.run_until_idle();
    const auto frames = uplink_frames(hub);
    ASSERT_EQ(frames.size(), 2u);
    std::uint16_t nat_port = 0;
    for (const Bytes& frame : frames) {
        const Bytes ip(frame.begin() + 14, frame.end());
        const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(ip.data());
        EXPECT_EQ(header->src_addr, HubFixture::uplink_ipv4.v4_network_order());
        EXPECT_EQ(rte_ipv4_cksum(header), 0) << "IPv4 header checksum must verify";
        if ((rte_be_to_cpu_16(header->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) == 0) {
            nat_port = udp_port(ip, true);
        }
    }
    EXPECT_TRUE(hub.exit_worker(1).nat->ports().contains(nat_port));

    Bytes answer = HubFixture::inner_udp(internet, HubFixture::uplink_ipv4, 200);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(answer.data() + 20);
    udp->src_port = rte_cpu_to_be_16(udp_port(whole, false));
    udp->dst_port = rte_cpu_to_be_16(nat_port);
    hub.inject_uplink(0, HubFixture::from_router(as_fragment(answer, 0x2000)));
    hub.inject_uplink(0, HubFixture::from_router(as_fragment(answer, 100)));
    hub.run_until_idle();
    const auto back = delivered(hub, 1);
    ASSERT_EQ(back.size(), 2u);
    for (const Bytes& ip : back) {
        const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(ip.data());
        EXPECT_EQ(header->dst_addr, hub.client(1).tunnel_address.v4_network_order());
        EXPECT_EQ(rte_ipv4_cksum(header), 0) << "IPv4 header checksum must verify";
    }
    EXPECT_EQ(hub.exit_worker(1).nat->counters().fragments, 2u);
    EXPECT_EQ(hub.worker(0).counters.total_drops() + hub.worker(1).counters.total_drops(), 0u);
}

// The internet reorders fragments (a router hashing on ports sends the first fragment, which
// has them, one way and the rest another): a later fragment that comes before its first waits
// for it at the steering worker, then follows it to the flow's owner. With one worker and with
// two, the later fragment in the burst before its first's, and in a pass of its own before.
TEST(ExitPath, LaterFragmentsBeforeTheirFirstWaitForIt) {
    for (unsigned workers : {1u, 2u}) {
        for (bool separate_passes : {false, true}) {
            SCOPED_TRACE(testing::Message()
                         << workers << " workers, separate passes " << separate_passes);
            HubFixture hub(exit_options(workers));
            const unsigned peer = workers - 1;  // peer 1 is worker 1's, steered from worker 0
            const Bytes translated = send_out(hub, peer, 200);
            ASSERT_FALSE(translated.empty());

            const Bytes answer = answer_to(translated, 200);
            hub.inject_uplink(0, HubFixture::from_router(as_fragment(answer, 100)));
            if (separate_passes) {
                hub.run_until_idle();
                EXPECT_TRUE(delivered(hub, peer).empty()) << "held until its first comes";
            }
            hub.inject_uplink(0, HubFixture::from_router(as_fragment(answer, 0x2000)));
            hub.run_until_idle();
            const auto back = delivered(hub, peer);
            ASSERT_EQ(back.size(), 2u);
            EXPECT_EQ(rte_be_to_cpu_16(
                          reinterpret_cast<const rte_ipv4_hdr*>(back[0].data())->fragment_offset),
                      0x2000)
                << "the first fragment goes first";
            for (const Bytes& ip : back) {
                const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(ip.data());
                EXPECT_EQ(header->dst_addr, hub.client(peer).tunnel_address.v4_network_order());
                EXPECT_EQ(rte_ipv4_cksum(header), 0) << "IPv4 header checksum must verify";
            }
            EXPECT_EQ(hub.exit_worker(peer).nat->counters().fragments, 1u) << "the later one";
            std::uint64_t drops = 0;
            for (unsigned w = 0; w < workers; ++w) {
                drops += hub.worker(w).counters.total_drops();
            }
            EXPECT_EQ(drops, 0u);
        }
    }
}

// A later fragment whose first never comes is dropped (nat_fragment) once its time is up, by
// the worker's housekeeping even when nothing more arrives.
TEST(ExitPath, ALaterFragmentWaitsOnlySoLong) {
    HubFixture hub(exit_options());
    const Bytes translated = send_out(hub, 0, 200);
    ASSERT_FALSE(translated.empty());
    hub.inject_uplink(0, HubFixture::from_router(as_fragment(answer_to(translated, 200), 100)));
    hub.run_until_idle();
    EXPECT_EQ(hub.exit_worker(0).fragments.early.held(), 1u);
    EXPECT_EQ(hub.worker(0).counters.total_drops(), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(fragment_lifetime_seconds * 1000 + 100));
    hub.run_until_idle();
    EXPECT_EQ(hub.exit_worker(0).fragments.early.held(), 0u);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::nat_fragment), 1u);
    EXPECT_TRUE(delivered(hub, 0).empty());
}

// An answer from the internet larger than the tunnel MTU (1420) is split into IPv4 fragments
// that fit, each sealed to the peer; with "don't fragment" set its sender is told the MTU.
TEST(ExitPath, AnswersLargerThanTheTunnelAreFragmented) {
    HubFixture hub(exit_options());
    const Bytes ip = send_out(hub, 0);
    ASSERT_FALSE(ip.empty());
    const Bytes answer = answer_to(ip, 1500);
    hub.inject_uplink(0, HubFixture::from_router(as_fragment(answer, 0)));
    hub.run_until_idle();
    const auto back = delivered(hub, 0);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(
        fragment_data(back, 0, hub.shared().tunnel_mtu, internet, hub.client(0).tunnel_address),
        1480u);
    EXPECT_EQ(udp_port(back[0], false), 1000) << "translated before it was split";
    EXPECT_EQ(hub.worker(0).counters.fragments_made, 2u);

    // With IP options (record route: not copied) the first piece keeps them, the second not.
    const Bytes with_options = test::with_ipv4_options(answer, {7, 7, 4, 0, 0, 0, 0, 0});
    hub.inject_uplink(0, HubFixture::from_router(with_options));
    hub.run_until_idle();
    const auto optioned = delivered(hub, 0);
    ASSERT_EQ(optioned.size(), 2u);
    EXPECT_EQ(optioned[0][0], 0x47);
    EXPECT_EQ(optioned[1][0], 0x45);
    EXPECT_EQ(
        fragment_data(optioned, 0, hub.shared().tunnel_mtu, internet, hub.client(0).tunnel_address),
        1480u);
    EXPECT_EQ(udp_port(optioned[0], false), 1000) << "translated past the options";
    EXPECT_EQ(hub.worker(0).counters.fragments_made, 4u);

    // With DF set: "fragmentation needed" with the tunnel's MTU goes back out of the uplink,
    // from the uplink address, quoting the packet as it came.
    const Bytes df = as_fragment(answer, RTE_IPV4_HDR_DF_FLAG);
    hub.inject_uplink(0, HubFixture::from_router(df));
    hub.run_until_idle();
    EXPECT_TRUE(delivered(hub, 0).empty());
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::tunnel_too_big), 1u);
    const auto errors = uplink_frames(hub);
    ASSERT_EQ(errors.size(), 1u);
    const Bytes error(errors[0].begin() + 14, errors[0].end());
    const auto* error_header = reinterpret_cast<const rte_ipv4_hdr*>(error.data());
    EXPECT_EQ(error_header->src_addr, HubFixture::uplink_ipv4.v4_network_order());
    EXPECT_EQ(error_header->dst_addr, internet.v4_network_order());
    EXPECT_EQ(rte_ipv4_cksum(error_header), 0);
    const auto* icmp = reinterpret_cast<const rte_icmp_hdr*>(error.data() + 20);
    EXPECT_EQ(icmp->icmp_type, 3);
    EXPECT_EQ(icmp->icmp_code, 4);
    EXPECT_EQ(rte_be_to_cpu_16(icmp->icmp_seq_nb), hub.shared().tunnel_mtu) << "next-hop MTU";
    EXPECT_TRUE(std::equal(df.begin(), df.begin() + 28, error.begin() + 28))
        << "the quote is the packet as it came, NAT port and all";
    EXPECT_EQ(hub.worker(0).counters.icmp_errors_sent, 1u);
}

TEST(ExitPath, UplinkOwnerFollowsTheNatPort) {
    HubFixture hub(exit_options(2));
    const PortRange second = split_port_range(hub.exit().ports, 2, 1);
    for (auto [port, owner] :
         {std::pair<std::uint16_t, unsigned>{1024, 0}, {second.first, 1}, {65535, 1}, {80, 2}}) {
        Bytes answer = HubFixture::inner_udp(internet, HubFixture::uplink_ipv4, 60);
        reinterpret_cast<rte_udp_hdr*>(answer.data() + 20)->dst_port = rte_cpu_to_be_16(port);
        rte_mbuf* packet = test::make_packet(answer);
        FragmentMap fragment_owners(16, 1000);
        EXPECT_EQ(uplink_owner(packet, hub.exit(), fragment_owners, 1), owner) << "port " << port;
        rte_pktmbuf_free(packet);
    }
}

struct Refusal {
    const char* name;
    std::uint8_t permissions;
    IpAddress destination;
    Drop reason;
};

TEST(ExitPath, RefusalsFollowThePermissionsAndAreCountedPerPeer) {
    const Refusal refusals[] = {
        {"no exit permission", 0, internet, Drop::exit_not_permitted},
        {"private destination without lan", permission_exit, ipv4(192, 168, 1, 1),
         Drop::exit_local_refused},
        {"the uplink's own subnet without lan", permission_exit, ipv4(203, 0, 113, 9),
         Drop::exit_local_refused},
        {"an unassigned tunnel address, even with lan", permission_exit | permission_lan,
         ipv4(10, 100, 0, 99), Drop::no_route},
    };
    for (const Refusal& row : refusals) {
        HubFixture hub(exit_options());
        hub.slot(0).permissions = row.permissions;
        send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, row.destination, 80));
        EXPECT_TRUE(uplink_frames(hub).empty()) << row.name;
        EXPECT_EQ(hub.worker(0).counters.dropped(row.reason), 1u) << row.name;
        const ExitCounters& counters = hub.exit().counters[0];
        EXPECT_EQ(counters.refused_no_exit, row.reason == Drop::exit_not_permitted ? 1u : 0u);
        EXPECT_EQ(counters.refused_local_needs_lan,
                  row.reason == Drop::exit_local_refused ? 1u : 0u);
        // Policy refusals are silent; an address no peer holds gets "host unreachable".
        const auto back = delivered(hub, 0);
        if (row.reason == Drop::no_route) {
            ASSERT_EQ(back.size(), 1u) << row.name;
            EXPECT_EQ(back[0][20], 3) << row.name;
            EXPECT_EQ(back[0][21], 1) << row.name;
        } else {
            EXPECT_TRUE(back.empty()) << row.name;
        }
    }
    HubFixture hub(exit_options());
    hub.slot(0).permissions = permission_exit | permission_lan;
    send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, ipv4(192, 168, 1, 1), 80));
    EXPECT_EQ(uplink_frames(hub).size(), 1u) << "lan reaches private destinations";
}

// The ICMP error a client gets back through the tunnel: from the gateway's tunnel address.
void expect_icmp_back(HubFixture& hub, std::uint8_t type, std::uint8_t code,
                      std::uint16_t mtu = 0) {
    auto back = delivered(hub, 0);
    ASSERT_EQ(back.size(), 1u);
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(back[0].data());
    EXPECT_EQ(ip->src_addr, ipv4(10, 100, 0, 1).v4_network_order());
    EXPECT_EQ(ip->dst_addr, hub.client(0).tunnel_address.v4_network_order());
    EXPECT_EQ(back[0][20], type);
    EXPECT_EQ(back[0][21], code);
    EXPECT_EQ((back[0][26] << 8 | back[0][27]), mtu);
}

// A flow's peer that moved to the other worker (a configuration change) still gets its
// answers: the worker whose NAT slice holds the flow translates them and hands them, as one
// batch, to the peer's new owner, which holds its send counter and seals.
TEST(ExitPath, AnswersFollowAPeerThatMovedToAnotherWorker) {
    HubFixture hub(exit_options(2));
    const Bytes ip = send_out(hub, 1);
    ASSERT_FALSE(ip.empty());
    hub.slot(1).owner = 0;  // the flow stays in worker 1's NAT slice
    const std::uint64_t handed_before = hub.worker(1).counters.handed_off;
    for (int i = 0; i < 3; ++i) {
        hub.inject_uplink(1, answer_frame(ip));
    }
    hub.run_until_idle();
    EXPECT_EQ(hub.worker(1).counters.handed_off, handed_before + 3);
    EXPECT_EQ(hub.transmitted(1).size(), 0u);
    auto sealed = hub.transmitted(0);
    ASSERT_EQ(sealed.size(), 3u);
    for (rte_mbuf* frame : sealed) {
        EXPECT_TRUE(hub.open_frame(hub.client(1), frame));
        rte_pktmbuf_free(frame);
    }
}

// The allowed IPs decide who gets an answer, as for anything sent into the tunnel: once the
// flow's peer no longer holds the address, its answers go to nobody. Peer 0's /32 moves to peer
// 1 (its recorded host address cleared first, as the contract of PeerSlot::host_ipv4 asks).
TEST(ExitPath, AnswersToAnAddressThePeerNoLongerHoldsAreDropped) {
    HubFixture hub(exit_options());
    const Bytes ip = send_out(hub, 0);
    ASSERT_FALSE(ip.empty());
    ASSERT_NE(hub.slot(0).host_ipv4.load(), 0u) << "the fixture records each peer's /32";
    hub.inject_uplink(0, answer_frame(ip));
    hub.run_until_idle();
    EXPECT_EQ(delivered(hub, 0).size(), 1u);

    hub.slot(0).host_ipv4.store(0);
    const AllowedIpChange moved[] = {{{hub.client(0).tunnel_address, 32}, 1}};
    ASSERT_TRUE(hub.shared().allowed_ips->apply(moved));
    hub.inject_uplink(0, answer_frame(ip));
    hub.run_until_idle();
    const auto after_the_move = hub.delivered();
    EXPECT_TRUE(after_the_move[0].empty());
    EXPECT_TRUE(after_the_move[1].empty());
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::nat_peer_mismatch), 1u);
}

TEST(ExitPath, TtlOfOneGetsTimeExceededFromTheGateway) {
    HubFixture hub(exit_options());
    send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 80, 1));
    EXPECT_TRUE(uplink_frames(hub).empty());
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::ttl_exceeded), 1u);
    expect_icmp_back(hub, 11, 0);
}

// A peer sending TTL 1 as fast as it can gets the worker's ICMP burst back, and no more: the
// rest are dropped unanswered, each still counted as ttl_exceeded.
TEST(ExitPath, IcmpErrorsStopAtTheWorkersBudget) {
    HubFixture hub(exit_options());
    const unsigned flood = IcmpErrorLimiter::default_burst + 30;
    std::vector<rte_mbuf*> frames;
    for (unsigned i = 0; i < flood; ++i) {
        frames.push_back(hub.client_frame(
            hub.client(0), HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 80, 1)));
    }
    hub.inject(0, frames.data(), flood);
    hub.run_until_idle();
    const auto back = delivered(hub, 0);
    // The bucket refills at 1000 a second while the flood is processed: a few more may pass.
    EXPECT_GE(back.size(), IcmpErrorLimiter::default_burst);
    EXPECT_LT(back.size(), flood);
    const WorkerCounters& counters = hub.worker(0).counters;
    EXPECT_EQ(counters.icmp_errors_sent, back.size());
    EXPECT_EQ(counters.icmp_errors_sent + counters.icmp_errors_suppressed, flood);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::ttl_exceeded), flood);
    EXPECT_TRUE(uplink_frames(hub).empty());
}

// A ping to the uplink address from the internet is answered from it, through the next hop,
// with the request's identifier, sequence and data, and both checksums right.
TEST(ExitPath, PingsToTheUplinkAddressAreAnswered) {
    HubFixture hub(exit_options());
    Bytes request(20 + 8 + 16);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(request.data());
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(request.size()));
    ip->time_to_live = 57;
    ip->next_proto_id = IPPROTO_ICMP;
    ip->src_addr = internet.v4_network_order();
    ip->dst_addr = HubFixture::uplink_ipv4.v4_network_order();
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto* icmp = reinterpret_cast<rte_icmp_hdr*>(request.data() + 20);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
    icmp->icmp_ident = rte_cpu_to_be_16(0x1234);
    icmp->icmp_seq_nb = rte_cpu_to_be_16(7);
    for (unsigned i = 0; i < 16; ++i) {
        request[28 + i] = static_cast<std::uint8_t>(i);
    }
    icmp->icmp_cksum = static_cast<std::uint16_t>(~rte_raw_cksum(icmp, 24));
    hub.inject_uplink(0, HubFixture::from_router(request));
    hub.run_until_idle();

    const auto frames = uplink_frames(hub);
    ASSERT_EQ(frames.size(), 1u);
    const Bytes& frame = frames[0];
    const auto* ethernet = reinterpret_cast<const rte_ether_hdr*>(frame.data());
    EXPECT_TRUE(rte_is_same_ether_addr(&ethernet->dst_addr, &HubFixture::router_mac));
    ASSERT_EQ(frame.size(), 14 + request.size());
    const auto* reply_ip = reinterpret_cast<const rte_ipv4_hdr*>(frame.data() + 14);
    EXPECT_EQ(reply_ip->src_addr, HubFixture::uplink_ipv4.v4_network_order());
    EXPECT_EQ(reply_ip->dst_addr, internet.v4_network_order());
    EXPECT_EQ(rte_raw_cksum(reply_ip, 20), 0xFFFF) << "IPv4 header checksum";
    const auto* reply = reinterpret_cast<const rte_icmp_hdr*>(frame.data() + 14 + 20);
    EXPECT_EQ(reply->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
    EXPECT_EQ(reply->icmp_ident, rte_cpu_to_be_16(0x1234));
    EXPECT_EQ(rte_raw_cksum(reply, 24), 0xFFFF) << "ICMP checksum";
    EXPECT_TRUE(std::equal(request.begin() + 28, request.end(), frame.begin() + 14 + 28));
    EXPECT_EQ(hub.worker(0).exit->uplink_echo_replies, 1u);
    EXPECT_EQ(hub.worker(0).counters.total_drops(), 0u);
}

// Larger than the uplink's MTU: split into fragments after translation without DF, refused
// with "fragmentation needed" (and the MTU) through the tunnel with it.
TEST(ExitPath, TooBigForTheUplinkIsFragmentedOrRefusedWhenDfIsSet) {
    HubFixture hub(exit_options());
    hub.exit().mtu = 1000;
    Bytes big = HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 1001);
    send(hub, 0, as_fragment(big, 0));
    const auto pieces = uplink_frames(hub);
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(fragment_data(pieces, 14, 1000, HubFixture::uplink_ipv4, internet), 981u);
    EXPECT_TRUE(hub.exit_worker(0).nat->ports().contains(
        udp_port(Bytes(pieces[0].begin() + 14, pieces[0].end()), true)))
        << "translated whole, then split";
    EXPECT_EQ(hub.exit().counters[0].packets_out, 1u);
    EXPECT_EQ(hub.worker(0).counters.fragments_made, 2u);

    send(hub, 0, as_fragment(big, RTE_IPV4_HDR_DF_FLAG));
    EXPECT_TRUE(uplink_frames(hub).empty());
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::too_big), 1u);
    expect_icmp_back(hub, 3, 4, 1000);
    send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 1000));
    EXPECT_EQ(uplink_frames(hub).size(), 1u) << "exactly the MTU fits";
}

TEST(ExitPath, NothingLeavesBeforeTheNextHopIsResolved) {
    HubFixture::Options options = exit_options();
    options.next_hop_resolved = false;
    HubFixture hub(options);
    send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 80));
    EXPECT_TRUE(uplink_frames(hub).empty());
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::uplink_unresolved), 1u);
}

TEST(ExitPath, TheIngressLimitDropsTheExcess) {
    HubFixture hub(exit_options());
    RateProfiles profiles;
    hub.exit().limits->configure_ingress(
        0, profiles.get({.bytes_per_second = 10000, .burst_bytes = 1500}));
    for (int i = 0; i < 3; ++i) {
        send(hub, 0, HubFixture::inner_udp(hub.client(0).tunnel_address, internet, 1000));
    }
    EXPECT_EQ(uplink_frames(hub).size(), 1u);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::rate_limited), 2u);
    EXPECT_EQ(hub.exit().counters[0].rate_limited_ingress, 2u);
}

// Answers coming back are metered before they are sealed: the burst admits one, the rest
// are dropped and counted against the peer.
TEST(ExitPath, TheEgressLimitDropsTheExcess) {
    HubFixture hub(exit_options());
    RateProfiles profiles;
    hub.exit().limits->configure_egress(
        0, profiles.get({.bytes_per_second = 10000, .burst_bytes = 1500}));
    const Bytes ip = send_out(hub, 0);
    ASSERT_FALSE(ip.empty()) << "the ingress direction is not limited";
    for (int i = 0; i < 3; ++i) {
        hub.inject_uplink(0, answer_frame(ip, 1000));
    }
    hub.run_until_idle();
    EXPECT_EQ(delivered(hub, 0).size(), 1u);
    EXPECT_EQ(hub.worker(0).counters.dropped(Drop::rate_limited), 2u);
    EXPECT_EQ(hub.exit().counters[0].rate_limited_egress, 2u);
    EXPECT_EQ(hub.exit().counters[0].rate_limited_ingress, 0u);
}

TEST(ExitPath, NewFlowsReachTheFlowLogQueueNamingThePeersKey) {
    HubFixture hub(exit_options());
    hub.exit().flow_log = true;
    hub.exit_worker(0).flow_log = std::make_unique<FlowLogQueue>("exit_test_log", 64);
    hub.exit().clock = WallClock::now();
    hub.slot(0).public_key.fill(0x42);
    const Bytes ip = send_out(hub, 0, 80);
    ASSERT_FALSE(ip.empty());
    FlowRecord records[4];
    ASSERT_EQ(hub.exit_worker(0).flow_log->pop(records, 4), 1u);
    EXPECT_EQ(records[0].event, FlowEvent::start);
    EXPECT_EQ(records[0].peer, hub.slot(0).public_key);
    EXPECT_EQ(records[0].source, hub.client(0).tunnel_address);
    EXPECT_EQ(records[0].destination, internet);
    EXPECT_EQ(records[0].translated, HubFixture::uplink_ipv4);
    EXPECT_EQ(records[0].translated_port, udp_port(ip, true));
    EXPECT_EQ(records[0].source_port, 1000);
}

}  // namespace
}  // namespace meshgate::dataplane
