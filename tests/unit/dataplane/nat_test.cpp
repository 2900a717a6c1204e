// NAT: every translated packet is compared byte for byte with the same packet built from
// scratch, whose checksums a small reference implementation computes in full; so an
// incremental update that is off by one bit anywhere fails. Plus port allocation, the range
// split among workers, table limits, timeouts with a fake clock, bounded expiry, MSS clamping,
// and malformed input. Buffers are exactly as long as the packet, so ASan sees any read or
// write past a truncated quote.
#include "dataplane/nat.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- addresses ------------------------------------------------------------------------------

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress address;
    address.bytes[0] = a, address.bytes[1] = b, address.bytes[2] = c, address.bytes[3] = d;
    return address;
}
// 2001:db8:<net>::<host>
IpAddress v6(std::uint8_t net, std::uint8_t host) {
    IpAddress address;
    address.is_v6 = true;
    address.bytes[0] = 0x20, address.bytes[1] = 0x01, address.bytes[2] = 0x0d;
    address.bytes[3] = 0xb8, address.bytes[5] = net, address.bytes[15] = host;
    return address;
}

const IpAddress uplink4 = v4(198, 51, 100, 1);
const IpAddress uplink6 = v6(0xff, 1);
const IpAddress inner4 = v4(10, 8, 0, 2);
const IpAddress inner6 = [] {
    IpAddress address = v6(0, 2);
    address.bytes[0] = 0xfd, address.bytes[1] = 0x00;  // fd00:db8::2, a ULA behind the tunnel
    return address;
}();
const IpAddress remote4 = v4(203, 0, 113, 7);
const IpAddress remote6 = v6(1, 7);
const IpAddress router4 = v4(192, 0, 2, 254);
const IpAddress router6 = v6(2, 0xfe);

constexpr PeerId peer_a = 7;
constexpr PeerId peer_b = 8;

// ---- a reference checksum: RFC 1071 the plain way -----------------------------------------

std::uint32_t add_words(const std::uint8_t* data, std::size_t length, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < length; i += 2) {
        sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    }
    if (length % 2) {
        sum += static_cast<std::uint32_t>(data[length - 1] << 8);
    }
    return sum;
}
std::uint16_t finish(std::uint32_t sum) {
    while (sum >> 16) {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}
void put16(std::uint8_t* p, std::uint16_t value) {
    p[0] = static_cast<std::uint8_t>(value >> 8);
    p[1] = static_cast<std::uint8_t>(value);
}
std::uint16_t get16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

std::uint32_t pseudo_header_sum(const IpAddress& source, const IpAddress& destination,
                                std::uint8_t protocol, std::size_t length) {
    std::size_t address_length = source.is_v6 ? 16 : 4;
    std::uint32_t sum = add_words(source.bytes.data(), address_length);
    sum = add_words(destination.bytes.data(), address_length, sum);
    return sum + protocol + static_cast<std::uint32_t>(length >> 16) +
           static_cast<std::uint32_t>(length & 0xFFFF);
}

// ---- packets built from scratch, every checksum computed in full ------------------------

enum class Proto { tcp, udp, icmp };
// Not an ICMP type: "the echo request of the packet's family" (8 or 128).
constexpr std::uint8_t echo_request = 0xFF;

struct Spec {
    Proto proto = Proto::udp;
    IpAddress source, destination;
    std::uint16_t source_port = 0;  // ICMP: the echo identifier
    std::uint16_t destination_port = 0;
    std::uint8_t icmp_type = echo_request;
    std::uint8_t tcp_flags = 0x10;
    Bytes tcp_options;  // a multiple of 4 bytes
    Bytes payload = Bytes(24, 0x5a);
    bool udp_no_checksum = false;
    std::uint16_t ipv4_fragment = 0;  // flags and offset field
};

Bytes pattern(std::size_t length) {
    Bytes bytes;
    for (std::size_t i = 0; i < length; ++i) {
        bytes.push_back(static_cast<std::uint8_t>(i * 13 + 5));
    }
    return bytes;
}

std::uint8_t protocol_number(Proto proto, bool is_v6) {
    switch (proto) {
        case Proto::tcp:
            return IPPROTO_TCP;
        case Proto::udp:
            return IPPROTO_UDP;
        case Proto::icmp:
            return is_v6 ? std::uint8_t{IPPROTO_ICMPV6} : std::uint8_t{IPPROTO_ICMP};
    }
    return 0;
}

Bytes transport(const Spec& spec) {
    const bool is_v6 = spec.source.is_v6;
    Bytes l4;
    switch (spec.proto) {
        case Proto::tcp: {
            l4.assign(20 + spec.tcp_options.size(), 0);
            put16(&l4[0], spec.source_port);
            put16(&l4[2], spec.destination_port);
            l4[4] = 0x01, l4[5] = 0x02, l4[6] = 0x03, l4[7] = 0x04;  // sequence
            l4[8] = 0x0a, l4[11] = 0x0b;                             // acknowledgement
            l4[12] = static_cast<std::uint8_t>(l4.size() / 4 << 4);
            l4[13] = spec.tcp_flags;
            put16(&l4[14], 0xFFFF);
            std::copy(spec.tcp_options.begin(), spec.tcp_options.end(), l4.begin() + 20);
            break;
        }
        case Proto::udp:
            l4.assign(8, 0);
            put16(&l4[0], spec.source_port);
            put16(&l4[2], spec.destination_port);
            put16(&l4[4], static_cast<std::uint16_t>(8 + spec.payload.size()));
            break;
        case Proto::icmp:
            l4.assign(8, 0);
            l4[0] = spec.icmp_type != echo_request ? spec.icmp_type : is_v6 ? 128 : 8;
            put16(&l4[4], spec.source_port);
            put16(&l4[6], 1);  // sequence
            break;
    }
    l4.insert(l4.end(), spec.payload.begin(), spec.payload.end());
    std::uint8_t protocol = protocol_number(spec.proto, is_v6);
    std::uint32_t sum = protocol == IPPROTO_ICMP
                            ? 0
                            : pseudo_header_sum(spec.source, spec.destination, protocol, l4.size());
    std::uint16_t checksum = finish(add_words(l4.data(), l4.size(), sum));
    std::size_t field = spec.proto == Proto::tcp ? 16 : spec.proto == Proto::udp ? 6 : 2;
    if (spec.proto == Proto::udp) {
        checksum = spec.udp_no_checksum ? 0 : checksum == 0 ? 0xFFFF : checksum;
    }
    put16(&l4[field], checksum);
    return l4;
}

Bytes ip_header(const IpAddress& source, const IpAddress& destination, std::uint8_t protocol,
                std::size_t payload_length, std::uint16_t fragment = 0) {
    if (source.is_v6) {
        Bytes ip(40, 0);
        ip[0] = 0x60;
        put16(&ip[4], static_cast<std::uint16_t>(payload_length));
        ip[6] = protocol;
        ip[7] = 64;
        std::copy_n(source.bytes.begin(), 16, ip.begin() + 8);
        std::copy_n(destination.bytes.begin(), 16, ip.begin() + 24);
        return ip;
    }
    Bytes ip(20, 0);
    ip[0] = 0x45;
    put16(&ip[2], static_cast<std::uint16_t>(20 + payload_length));
    put16(&ip[4], 0x1234);
    put16(&ip[6], fragment);
    ip[8] = 64;
    ip[9] = protocol;
    std::copy_n(source.bytes.begin(), 4, ip.begin() + 12);
    std::copy_n(destination.bytes.begin(), 4, ip.begin() + 16);
    put16(&ip[10], finish(add_words(ip.data(), 20)));
    return ip;
}

Bytes build(const Spec& spec) {
    Bytes l4 = transport(spec);
    Bytes packet =
        ip_header(spec.source, spec.destination, protocol_number(spec.proto, spec.source.is_v6),
                  l4.size(), spec.ipv4_fragment);
    packet.insert(packet.end(), l4.begin(), l4.end());
    return packet;
}

// An ICMP error from `from` to `to` quoting `quote` (ICMPv4: no pseudo header).
Bytes icmp_error(const IpAddress& from, const IpAddress& to, std::uint8_t type, std::uint8_t code,
                 std::uint32_t rest, const Bytes& quote) {
    const bool is_v6 = from.is_v6;
    Bytes message(8, 0);
    message[0] = type;
    message[1] = code;
    put16(&message[4], static_cast<std::uint16_t>(rest >> 16));
    put16(&message[6], static_cast<std::uint16_t>(rest));
    message.insert(message.end(), quote.begin(), quote.end());
    std::uint8_t protocol = is_v6 ? std::uint8_t{IPPROTO_ICMPV6} : std::uint8_t{IPPROTO_ICMP};
    std::uint32_t sum = is_v6 ? pseudo_header_sum(from, to, protocol, message.size()) : 0;
    put16(&message[2], finish(add_words(message.data(), message.size(), sum)));
    Bytes packet = ip_header(from, to, protocol, message.size());
    packet.insert(packet.end(), message.begin(), message.end());
    return packet;
}

// The answer to `spec`: addresses and ports swapped, an echo request becomes a reply.
Spec reply_to(Spec spec) {
    std::swap(spec.source, spec.destination);
    if (spec.proto == Proto::icmp) {
        spec.icmp_type = spec.source.is_v6 ? 129 : 0;
    } else {
        std::swap(spec.source_port, spec.destination_port);
    }
    return spec;
}

Spec client_spec(bool is_v6, Proto proto, std::uint16_t port = 40000) {
    Spec spec;
    spec.proto = proto;
    spec.source = is_v6 ? inner6 : inner4;
    spec.destination = is_v6 ? remote6 : remote4;
    spec.source_port = port;
    spec.destination_port = proto == Proto::icmp ? 0 : 443;
    return spec;
}

// ---- tables and calls on exactly sized buffers -------------------------------------------

NatOptions test_options(std::uint32_t capacity = 1024, PortRange ports = {20000, 20999}) {
    NatOptions options;
    options.capacity = capacity;
    options.ports = ports;
    options.uplink_v4 = uplink4;
    options.uplink_v6 = uplink6;
    options.ticks_per_second = 1;  // `now` in seconds
    return options;
}

std::unique_ptr<NatTable> make_table(const NatOptions& options = test_options()) {
    static int tables = 0;
    return std::make_unique<NatTable>("nat_test" + std::to_string(tables++), options);
}

// Runs `call` on a heap copy exactly as long as the packet, then copies the result back.
template <typename Call>
NatOutcome on_exact_buffer(Bytes& packet, Call call) {
    auto buffer = std::make_unique<std::uint8_t[]>(packet.size());
    std::copy(packet.begin(), packet.end(), buffer.get());
    NatOutcome outcome = call(buffer.get(), static_cast<std::uint32_t>(packet.size()));
    std::copy_n(buffer.get(), packet.size(), packet.begin());
    return outcome;
}
NatOutcome out(NatTable& table, Bytes& packet, std::uint64_t now, PeerId peer = peer_a) {
    return on_exact_buffer(packet, [&](std::uint8_t* ip, std::uint32_t length) {
        return table.translate_outbound(ip, length, peer, now);
    });
}
NatOutcome in(NatTable& table, Bytes& packet, std::uint64_t now) {
    return on_exact_buffer(packet, [&](std::uint8_t* ip, std::uint32_t length) {
        return table.translate_inbound(ip, length, now);
    });
}

// Sends `spec` out and returns the translated port (ICMP: identifier).
std::uint16_t open_flow(NatTable& table, const Spec& spec, std::uint64_t now,
                        PeerId peer = peer_a) {
    Bytes packet = build(spec);
    NatOutcome outcome = out(table, packet, now, peer);
    EXPECT_EQ(outcome.result, NatResult::translated);
    return table.flow(outcome.flow).translated_port;
}

std::vector<NatFlowRecord> expire_all(NatTable& table, std::uint64_t now) {
    std::vector<NatFlowRecord> records(table.capacity());
    unsigned count = table.expire(now, table.capacity(), records);
    records.resize(count);
    return records;
}

const char* name(Proto proto) {
    return proto == Proto::tcp ? "tcp" : proto == Proto::udp ? "udp" : "icmp";
}

// ---- outcomes ------------------------------------------------------------------------------

// NatOutcome::translated() builds the outcome as two machine words; every field must land
// where the burst loops read it, whatever the values, and the reserved bytes stay zero.
TEST(NatOutcomeWords, TranslatedPutsEveryFieldInItsPlace) {
    for (const bool created : {false, true}) {
        for (const PeerId peer : {PeerId{0}, PeerId{7}, no_peer - 1, no_peer}) {
            for (const std::uint32_t flow : {0u, 1u, 0x12345678u, 0xFFFFFFFFu}) {
                const NatOutcome outcome = NatOutcome::translated(created, peer, flow);
                EXPECT_EQ(outcome.result, NatResult::translated);
                EXPECT_EQ(outcome.created, created);
                EXPECT_EQ(outcome.peer, peer);
                EXPECT_EQ(outcome.flow, flow);
                EXPECT_EQ(outcome.reserved[0] | outcome.reserved[1], 0);
                EXPECT_EQ(outcome.reserved_tail, 0u);
            }
        }
    }
}

// ---- port ranges ----------------------------------------------------------------------------

TEST(NatPortRange, SlicesCoverTheRangeAndOwnerOfPortAgrees) {
    const PortRange all{1024, 65535};
    for (unsigned workers = 1; workers <= 7; ++workers) {
        std::uint32_t next = all.first;
        for (unsigned worker = 0; worker < workers; ++worker) {
            PortRange slice = split_port_range(all, workers, worker);
            ASSERT_EQ(slice.first, next) << workers << " workers";
            EXPECT_GE(slice.size(), all.size() / workers);
            EXPECT_LE(slice.size(), all.size() / workers + 1);
            next = slice.last + 1u;
            for (std::uint32_t port = slice.first; port <= slice.last; ++port) {
                ASSERT_EQ(owner_of_port(all, workers, static_cast<std::uint16_t>(port)), worker)
                    << "port " << port << ", " << workers << " workers";
            }
        }
        EXPECT_EQ(next, 65536u);
        EXPECT_EQ(owner_of_port(all, workers, 1023), workers);  // not a NAT port
        EXPECT_EQ(owner_of_port(all, workers, 80), workers);
    }
}

TEST(NatPortRange, MoreWorkersThanPortsLeavesSomeEmpty) {
    const PortRange all{100, 102};
    EXPECT_EQ(split_port_range(all, 5, 0), (PortRange{100, 100}));
    EXPECT_EQ(split_port_range(all, 5, 2), (PortRange{102, 102}));
    EXPECT_EQ(split_port_range(all, 5, 3).size(), 0u);
    EXPECT_EQ(owner_of_port(all, 5, 102), 2u);
    EXPECT_THROW(make_table(test_options(64, split_port_range(all, 5, 4))), std::invalid_argument);
}

// ---- translation both ways ------------------------------------------------------------------

class NatRoundTrip : public ::testing::TestWithParam<std::tuple<bool, Proto>> {};

TEST_P(NatRoundTrip, BothDirectionsMatchPacketsBuiltFromScratch) {
    const auto [is_v6, proto] = GetParam();
    auto table = make_table();
    std::uint16_t inner_port = 40000;
    // Odd lengths exercise the checksum's padding byte; 1200 bytes, a full-size payload.
    for (std::size_t length : {0, 1, 33, 1200}) {
        Spec sent = client_spec(is_v6, proto, inner_port++);
        sent.payload = pattern(length);
        Bytes packet = build(sent);
        NatOutcome outcome = out(*table, packet, 10);
        ASSERT_EQ(outcome.result, NatResult::translated);
        EXPECT_TRUE(outcome.created);
        EXPECT_EQ(outcome.peer, peer_a);
        const NatFlowRecord& flow = table->flow(outcome.flow);
        EXPECT_TRUE(table->ports().contains(flow.translated_port));

        Spec translated = sent;
        translated.source = is_v6 ? uplink6 : uplink4;
        translated.source_port = flow.translated_port;
        EXPECT_EQ(packet, build(translated)) << "outbound, payload " << length;

        Bytes answer = build(reply_to(translated));
        NatOutcome back = in(*table, answer, 11);
        ASSERT_EQ(back.result, NatResult::translated);
        EXPECT_EQ(back.peer, peer_a);
        EXPECT_EQ(back.flow, outcome.flow);
        EXPECT_FALSE(back.created);
        EXPECT_EQ(answer, build(reply_to(sent))) << "inbound, payload " << length;

        EXPECT_EQ(flow.packets_out, 1u);
        EXPECT_EQ(flow.packets_in, 1u);
        EXPECT_EQ(flow.bytes_out, build(sent).size());
        EXPECT_EQ(flow.bytes_in, build(sent).size());
    }
    // A second packet of a flow finds it again: same port, not created.
    Spec again = client_spec(is_v6, proto, 40000);
    again.payload = pattern(0);
    Bytes packet = build(again);
    NatOutcome outcome = out(*table, packet, 12);
    EXPECT_FALSE(outcome.created);
    EXPECT_EQ(table->counters().created, 4u);
    EXPECT_EQ(table->counters().active, 4u);
}

INSTANTIATE_TEST_SUITE_P(All, NatRoundTrip,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(Proto::tcp, Proto::udp, Proto::icmp)),
                         [](const auto& info) {
                             return std::string(std::get<0>(info.param) ? "v6_" : "v4_") +
                                    name(std::get<1>(info.param));
                         });

// Random addresses, ports and payloads, both directions, against packets built from scratch:
// the incremental updates sum addresses four bytes at a time, so every carry across a 16-bit
// half must come out as the plain 16-bit sum's does.
TEST_P(NatRoundTrip, RandomAddressesPortsAndPayloads) {
    const auto [is_v6, proto] = GetParam();
    std::mt19937 rng(is_v6 * 7 + static_cast<unsigned>(proto));
    const auto random_address = [&](bool v6) {
        IpAddress address;
        address.is_v6 = v6;
        for (unsigned i = 0; i < (v6 ? 16u : 4u); ++i) {
            address.bytes[i] = static_cast<std::uint8_t>(rng());
        }
        return address;
    };
    for (int table_round = 0; table_round < 8; ++table_round) {
        NatOptions options = test_options();
        options.uplink_v4 = random_address(false);
        options.uplink_v6 = random_address(true);
        auto table = make_table(options);
        for (int flow = 0; flow < 64; ++flow) {
            Spec sent;
            sent.proto = proto;
            sent.source = random_address(is_v6);
            sent.destination = random_address(is_v6);
            sent.source_port = static_cast<std::uint16_t>(rng());
            sent.destination_port = proto == Proto::icmp ? 0 : static_cast<std::uint16_t>(rng());
            sent.payload.resize(rng() % 64);
            for (std::uint8_t& byte : sent.payload) {
                byte = static_cast<std::uint8_t>(rng());
            }
            Bytes packet = build(sent);
            NatOutcome outcome = out(*table, packet, 10);
            ASSERT_EQ(outcome.result, NatResult::translated);
            Spec translated = sent;
            translated.source = is_v6 ? options.uplink_v6 : options.uplink_v4;
            translated.source_port = table->flow(outcome.flow).translated_port;
            ASSERT_EQ(packet, build(translated))
                << "outbound, round " << table_round << " flow " << flow;
            Bytes answer = build(reply_to(translated));
            ASSERT_EQ(in(*table, answer, 11).result, NatResult::translated);
            ASSERT_EQ(answer, build(reply_to(sent)))
                << "inbound, round " << table_round << " flow " << flow;
        }
    }
}

TEST(NatTranslation, Ipv4UdpWithoutChecksumKeepsNone) {
    auto table = make_table();
    Spec sent = client_spec(false, Proto::udp);
    sent.udp_no_checksum = true;
    Bytes packet = build(sent);
    ASSERT_EQ(out(*table, packet, 0).result, NatResult::translated);
    Spec translated = sent;
    translated.source = uplink4;
    translated.source_port = table->ports().first;
    EXPECT_EQ(packet, build(translated));
    EXPECT_EQ(get16(&packet[20 + 6]), 0);

    Bytes answer = build(reply_to(translated));
    ASSERT_EQ(in(*table, answer, 1).result, NatResult::translated);
    EXPECT_EQ(answer, build(reply_to(sent)));
}

// A UDP checksum that computes to zero must be sent as 0xFFFF: choose the payload so that the
// translated packet sums to exactly that.
TEST(NatTranslation, UdpChecksumComputingToZeroIsSentAsAllOnes) {
    for (bool is_v6 : {false, true}) {
        auto table = make_table();
        Spec translated = client_spec(is_v6, Proto::udp);
        translated.source = is_v6 ? uplink6 : uplink4;
        translated.source_port = table->ports().first;  // the first flow's port
        translated.payload = Bytes(16, 0);
        std::size_t checksum = (is_v6 ? 40 : 20) + 6;
        std::uint16_t without = get16(&build(translated)[checksum]);
        put16(translated.payload.data(), without);  // adds ~sum: the sum becomes 0xFFFF
        ASSERT_EQ(get16(&build(translated)[checksum]), 0xFFFF);

        Spec sent = client_spec(is_v6, Proto::udp);
        sent.payload = translated.payload;
        Bytes packet = build(sent);
        ASSERT_NE(get16(&packet[checksum]), 0xFFFF);
        ASSERT_EQ(out(*table, packet, 0).result, NatResult::translated);
        EXPECT_EQ(packet, build(translated)) << (is_v6 ? "v6" : "v4");
    }
}

// `packet` (IPv4 or IPv6) with its source or destination address replaced, and the IPv4 header
// checksum computed afresh: what a later fragment must look like once translated. Its other
// bytes are data, whatever they resemble.
Bytes with_address(Bytes packet, bool source, const IpAddress& address) {
    const bool is_v6 = (packet[0] >> 4) == 6;
    const std::size_t at = is_v6 ? (source ? 8 : 24) : (source ? 12 : 16);
    std::copy_n(address.bytes.begin(), is_v6 ? 16 : 4, packet.begin() + at);
    if (!is_v6) {
        put16(&packet[10], 0);
        put16(&packet[10], finish(add_words(packet.data(), 20)));
    }
    return packet;
}

// An IPv4 datagram's later fragments carry no ports: they are translated as their first
// fragment was, both ways, and only the addresses and the header checksum change.
TEST(NatFragments, Ipv4LaterFragmentsFollowTheirFirst) {
    auto table = make_table();
    Spec first = client_spec(false, Proto::udp);
    first.ipv4_fragment = 0x2000;  // more fragments, offset 0
    Bytes packet = build(first);
    NatOutcome outcome = out(*table, packet, 0);
    ASSERT_EQ(outcome.result, NatResult::translated);
    Spec translated = first;
    translated.source = uplink4;
    translated.source_port = table->ports().first;
    EXPECT_EQ(packet, build(translated));

    Spec later = first;
    later.ipv4_fragment = 0x2000 | 185;  // offset 1480
    Bytes fragment = build(later);
    const Bytes expected_out = with_address(fragment, true, uplink4);
    NatOutcome fragment_outcome = out(*table, fragment, 1);
    ASSERT_EQ(fragment_outcome.result, NatResult::translated);
    EXPECT_EQ(fragment_outcome.flow, outcome.flow);
    EXPECT_EQ(fragment_outcome.peer, peer_a);
    EXPECT_EQ(fragment, expected_out);

    // The answer, fragmented too: first by its port, the last by the first's record.
    Spec answer = reply_to(translated);
    answer.ipv4_fragment = 0x2000;
    Bytes answer_first = build(answer);
    ASSERT_EQ(in(*table, answer_first, 1).result, NatResult::translated);
    EXPECT_EQ(answer_first, build([&] {
                  Spec back = reply_to(first);
                  back.ipv4_fragment = 0x2000;
                  return back;
              }()));
    answer.ipv4_fragment = 185;  // the last: offset 1480, no more fragments
    Bytes answer_last = build(answer);
    const Bytes expected_in = with_address(answer_last, false, inner4);
    NatOutcome back = in(*table, answer_last, 1);
    ASSERT_EQ(back.result, NatResult::translated);
    EXPECT_EQ(back.peer, peer_a);
    EXPECT_EQ(answer_last, expected_in);

    EXPECT_EQ(table->counters().fragments, 2u);
    const NatFlowRecord& flow = table->flow(outcome.flow);
    EXPECT_EQ(flow.packets_out, 2u);
    EXPECT_EQ(flow.packets_in, 2u);
    EXPECT_EQ(flow.bytes_out, build(first).size() + build(later).size());
}

// A fragmented ping: the identifier is in the first fragment only, both ways.
TEST(NatFragments, Ipv4EchoFollowsItsFirstFragment) {
    auto table = make_table();
    Spec first = client_spec(false, Proto::icmp, 77);
    first.payload = pattern(1000);
    first.ipv4_fragment = 0x2000;
    Bytes packet = build(first);
    ASSERT_EQ(out(*table, packet, 0).result, NatResult::translated);
    Spec later = first;
    later.ipv4_fragment = 125;
    Bytes fragment = build(later);
    EXPECT_EQ(out(*table, fragment, 0).result, NatResult::translated);

    Spec translated = first;
    translated.source = uplink4;
    translated.source_port = table->flow(0).translated_port;
    Spec answer = reply_to(translated);
    Bytes answer_first = build(answer);
    EXPECT_EQ(in(*table, answer_first, 0).result, NatResult::translated);
    answer.ipv4_fragment = 125;
    Bytes answer_last = build(answer);
    EXPECT_EQ(in(*table, answer_last, 0).result, NatResult::translated);
}

// A later fragment is refused (and left as it was) unless the first fragment of the same
// datagram (same addresses, protocol and identification) was translated for the same peer,
// within the last two seconds.
TEST(NatFragments, LaterFragmentsWithoutTheirFirstAreRefused) {
    auto table = make_table();
    Spec later = client_spec(false, Proto::udp);
    later.ipv4_fragment = 185;
    const auto refused = [&](Bytes fragment, std::uint64_t now, PeerId peer, const char* why) {
        const Bytes before = fragment;
        EXPECT_EQ(out(*table, fragment, now, peer).result, NatResult::fragment) << why;
        EXPECT_EQ(fragment, before) << why;
    };
    refused(build(later), 0, peer_a, "before any first fragment");

    Spec first = later;
    first.ipv4_fragment = 0x2000;
    Bytes packet = build(first);
    ASSERT_EQ(out(*table, packet, 10).result, NatResult::translated);

    Bytes other_datagram = build(later);
    put16(&other_datagram[4], 0x4321);
    put16(&other_datagram[10], 0);
    put16(&other_datagram[10], finish(add_words(other_datagram.data(), 20)));
    refused(other_datagram, 10, peer_a, "another identification");
    refused(build(later), 10, peer_b, "another peer");
    refused(build(later), 12, peer_a, "after the lifetime");
    Bytes in_time = build(later);
    EXPECT_EQ(out(*table, in_time, 11, peer_a).result, NatResult::translated);

    // From the uplink, a later fragment no first fragment opened is refused too.
    Spec stray = reply_to(client_spec(false, Proto::udp));
    stray.destination = uplink4;
    stray.ipv4_fragment = 185;
    Bytes answer = build(stray);
    const Bytes before = answer;
    EXPECT_EQ(in(*table, answer, 11).result, NatResult::fragment);
    EXPECT_EQ(answer, before);
    EXPECT_EQ(table->counters().fragments, 1u);
}

// With one fragment slot, a second datagram's first fragment takes the first's record: the
// first datagram's later fragments are refused, and the displacement is counted (meshgate
// show) so an operator can tell it from fragments that never had a first.
TEST(NatFragments, ADisplacedFirstFragmentIsCounted) {
    NatOptions options = test_options();
    options.fragment_slots = 1;
    auto table = make_table(options);
    Spec first = client_spec(false, Proto::udp);
    first.ipv4_fragment = 0x2000;
    Bytes packet = build(first);
    ASSERT_EQ(out(*table, packet, 0).result, NatResult::translated);
    EXPECT_EQ(table->fragments_displaced(), 0u);

    Spec second = first;
    second.destination_port = 4444;  // another flow
    packet = build(second);
    put16(&packet[4], 0x4321);  // another datagram
    put16(&packet[10], 0);
    put16(&packet[10], finish(add_words(packet.data(), 20)));
    ASSERT_EQ(out(*table, packet, 0).result, NatResult::translated);
    EXPECT_EQ(table->fragments_displaced(), 1u);

    Spec later = first;
    later.ipv4_fragment = 185;
    packet = build(later);
    EXPECT_EQ(out(*table, packet, 0).result, NatResult::fragment);
}

// IPv6 puts fragmentation in an extension header between the IP header and the transport.
Bytes with_fragment_header(Bytes packet, std::uint16_t offset_and_more) {
    std::uint8_t next = packet[6];
    packet[6] = 44;
    put16(&packet[4], static_cast<std::uint16_t>(get16(&packet[4]) + 8));
    Bytes header = {next, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};
    put16(&header[2], offset_and_more);
    packet.insert(packet.begin() + 40, header.begin(), header.end());
    return packet;
}

TEST(NatFragments, Ipv6LaterFragmentsFollowTheirFirst) {
    auto table = make_table();
    Spec sent = client_spec(true, Proto::udp);
    Bytes packet = with_fragment_header(build(sent), 0x0001);  // offset 0, more fragments
    ASSERT_EQ(out(*table, packet, 0).result, NatResult::translated);
    Spec translated = sent;
    translated.source = uplink6;
    translated.source_port = table->ports().first;
    EXPECT_EQ(packet, with_fragment_header(build(translated), 0x0001));

    Bytes later = with_fragment_header(build(sent), 185 << 3);
    const Bytes expected = with_address(later, true, uplink6);
    EXPECT_EQ(out(*table, later, 0).result, NatResult::translated);
    EXPECT_EQ(later, expected);

    // Another identification: another datagram, whose first fragment was not seen.
    Bytes other = with_fragment_header(build(sent), 185 << 3);
    other[40 + 7] ^= 1;
    const Bytes before = other;
    EXPECT_EQ(out(*table, other, 0).result, NatResult::fragment);
    EXPECT_EQ(other, before);
}

TEST(NatTranslation, UnsupportedAndUnknownTrafficIsLeftAlone) {
    auto table = make_table();
    Spec gre = client_spec(false, Proto::udp);
    Bytes packet = build(gre);
    packet[9] = 47;  // GRE (the header checksum no longer matters: nothing may change)
    Bytes before = packet;
    EXPECT_EQ(out(*table, packet, 0).result, NatResult::unsupported_protocol);
    EXPECT_EQ(packet, before);

    Spec echo_reply = client_spec(false, Proto::icmp);
    echo_reply.icmp_type = 0;  // a peer answering a ping: nothing to map it to
    packet = build(echo_reply);
    before = packet;
    EXPECT_EQ(out(*table, packet, 0).result, NatResult::unsupported_protocol);
    EXPECT_EQ(packet, before);

    // Inbound without a mapping, to another address, or a ping of the uplink itself.
    Spec stray = reply_to(client_spec(false, Proto::udp));
    stray.destination = uplink4;
    stray.destination_port = 20000;
    packet = build(stray);
    before = packet;
    EXPECT_EQ(in(*table, packet, 0).result, NatResult::no_flow);
    stray.destination = v4(198, 51, 100, 2);
    packet = build(stray);
    EXPECT_EQ(in(*table, packet, 0).result, NatResult::no_flow);
    Spec ping = reply_to(client_spec(false, Proto::icmp));
    ping.icmp_type = 8;
    ping.destination = uplink4;
    packet = build(ping);
    EXPECT_EQ(in(*table, packet, 0).result, NatResult::unsupported_protocol);
    EXPECT_EQ(table->counters().created, 0u);

    // No IPv6 on the uplink: IPv6 is not translated at all.
    NatOptions options = test_options();
    options.uplink_v6 = IpAddress{{}, true};
    auto v4_only = make_table(options);
    packet = build(client_spec(true, Proto::tcp));
    EXPECT_EQ(out(*v4_only, packet, 0).result, NatResult::unsupported_protocol);
}

// ---- ICMP errors ----------------------------------------------------------------------------

struct ErrorCase {
    const char* name;
    bool is_v6;
    Proto proto;
    std::uint8_t type, code;
    std::uint32_t rest;  // the MTU of "fragmentation needed" / "packet too big"
    std::size_t payload;
    std::size_t quote;  // bytes of the outbound packet the error quotes (capped at its size)
    bool from_router;   // else from the remote host itself
};

const ErrorCase error_cases[] = {
    {"v4_port_unreachable", false, Proto::udp, 3, 3, 0, 40, 9999, false},
    {"v4_fragmentation_needed", false, Proto::tcp, 3, 4, 1280, 1400, 548, true},
    {"v4_time_exceeded_8_bytes_of_tcp", false, Proto::tcp, 11, 0, 0, 100, 28, true},
    {"v4_time_exceeded_echo", false, Proto::icmp, 11, 0, 0, 56, 28, true},
    {"v4_host_unreachable_udp_8_bytes", false, Proto::udp, 3, 1, 0, 100, 28, true},
    {"v6_packet_too_big", true, Proto::udp, 2, 0, 1280, 1400, 1232, true},
    {"v6_packet_too_big_tcp", true, Proto::tcp, 2, 0, 1280, 1400, 1232, true},
    {"v6_time_exceeded_8_bytes_of_tcp", true, Proto::tcp, 3, 0, 0, 100, 48, true},
    {"v6_port_unreachable", true, Proto::udp, 1, 4, 0, 40, 9999, false},
    {"v6_unreachable_echo", true, Proto::icmp, 1, 0, 0, 56, 9999, true},
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
    *os << c.name;
}

class NatIcmpError : public ::testing::TestWithParam<ErrorCase> {};

// After translation the error must be exactly the one the router would have sent had the
// client's packet reached it untranslated: to the client, quoting the client's own packet.
TEST_P(NatIcmpError, QuoteAndEveryChecksumAreTranslatedBack) {
    const ErrorCase& c = GetParam();
    auto table = make_table();
    Spec sent = client_spec(c.is_v6, c.proto);
    sent.payload = pattern(c.payload);
    const Bytes original = build(sent);
    Bytes translated = original;
    ASSERT_EQ(out(*table, translated, 0).result, NatResult::translated);

    const IpAddress& from = c.from_router ? (c.is_v6 ? router6 : router4) : sent.destination;
    const std::size_t quote = std::min(c.quote, original.size());
    Bytes error = icmp_error(from, c.is_v6 ? uplink6 : uplink4, c.type, c.code, c.rest,
                             Bytes(translated.begin(), translated.begin() + quote));
    NatOutcome outcome = in(*table, error, 1);
    ASSERT_EQ(outcome.result, NatResult::translated);
    EXPECT_EQ(outcome.peer, peer_a);
    EXPECT_EQ(error, icmp_error(from, sent.source, c.type, c.code, c.rest,
                                Bytes(original.begin(), original.begin() + quote)));
    // Counted, but an error does not keep the flow alive.
    EXPECT_EQ(table->flow(outcome.flow).packets_in, 1u);
    EXPECT_EQ(table->flow(outcome.flow).last_seen, 0u);
}

// Every length of quote, from nothing to the whole packet: either malformed and untouched, or
// translated exactly; never a byte read or written past the buffer (ASan build).
TEST_P(NatIcmpError, EveryTruncationOfTheQuote) {
    const ErrorCase& c = GetParam();
    auto table = make_table();
    Spec sent = client_spec(c.is_v6, c.proto);
    sent.payload = pattern(std::min<std::size_t>(c.payload, 200));
    const Bytes original = build(sent);
    Bytes translated = original;
    ASSERT_EQ(out(*table, translated, 0).result, NatResult::translated);
    const std::size_t needed = (c.is_v6 ? 40 : 20) + 8;
    // A quote that ends inside the TCP checksum holds half of it, which cannot be updated
    // (the other half decides the carries): that byte stays as it was sent.
    const std::size_t half_checksum = (c.is_v6 ? 40 : 20) + 17;
    const IpAddress& router = c.is_v6 ? router6 : router4;
    for (std::size_t quote = 0; quote <= original.size(); ++quote) {
        Bytes error = icmp_error(router, c.is_v6 ? uplink6 : uplink4, c.type, c.code, c.rest,
                                 Bytes(translated.begin(), translated.begin() + quote));
        const Bytes before = error;
        NatOutcome outcome = in(*table, error, 1);
        if (quote < needed) {
            EXPECT_EQ(outcome.result, NatResult::malformed) << "quote " << quote;
            EXPECT_EQ(error, before) << "quote " << quote;
        } else {
            ASSERT_EQ(outcome.result, NatResult::translated) << "quote " << quote;
            Bytes expected(original.begin(), original.begin() + quote);
            if (c.proto == Proto::tcp && quote == half_checksum) {
                expected.back() = translated[quote - 1];
            }
            EXPECT_EQ(error, icmp_error(router, sent.source, c.type, c.code, c.rest, expected))
                << "quote " << quote;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(All, NatIcmpError, ::testing::ValuesIn(error_cases),
                         [](const auto& info) { return std::string(info.param.name); });

// Errors about fragments. A first fragment carries the ports, so an error quoting it is
// translated as any other: the remote host's "fragment reassembly time exceeded" (11/1,
// which quotes the first fragment, RFC 792) and a router's "packet too big" for an IPv6
// first fragment reach the client exactly as they would have without NAT. A quoted later
// fragment names no flow: refused, untouched.
TEST(NatIcmpErrorFragments, ErrorsQuotingAFirstFragmentAreTranslated) {
    auto table = make_table();
    for (bool is_v6 : {false, true}) {
        Spec sent = client_spec(is_v6, Proto::udp);
        sent.payload = pattern(600);
        if (!is_v6) {
            sent.ipv4_fragment = 0x2000;  // more fragments, offset 0
        }
        const Bytes original = is_v6 ? with_fragment_header(build(sent), 0x0001) : build(sent);
        Bytes translated = original;
        ASSERT_EQ(out(*table, translated, 0).result, NatResult::translated) << is_v6;

        const std::uint8_t type = is_v6 ? 2 : 11;
        const std::uint8_t code = is_v6 ? 0 : 1;
        const std::uint32_t mtu = is_v6 ? 1280 : 0;
        const IpAddress& from = is_v6 ? router6 : sent.destination;
        const std::size_t quote = is_v6 ? original.size() : 28;  // v4: header and 8 bytes
        Bytes error = icmp_error(from, is_v6 ? uplink6 : uplink4, type, code, mtu,
                                 Bytes(translated.begin(), translated.begin() + quote));
        NatOutcome outcome = in(*table, error, 1);
        ASSERT_EQ(outcome.result, NatResult::translated) << is_v6;
        EXPECT_EQ(outcome.peer, peer_a);
        EXPECT_EQ(error, icmp_error(from, sent.source, type, code, mtu,
                                    Bytes(original.begin(), original.begin() + quote)))
            << is_v6;

        Bytes later = is_v6 ? with_fragment_header(build(sent), 75 << 3) : build(sent);
        if (!is_v6) {
            put16(&later[6], 75);  // offset 600, the last fragment
            put16(&later[10], 0);
            put16(&later[10], finish(add_words(later.data(), 20)));
        }
        ASSERT_EQ(out(*table, later, 0).result, NatResult::translated) << is_v6;
        const Bytes later_quote(later.begin(), later.begin() + (is_v6 ? 48 : 28));
        Bytes about_later = is_v6 ? icmp_error(router6, uplink6, 3, 0, 0, later_quote)
                                  : icmp_error(router4, uplink4, 11, 0, 0, later_quote);
        const Bytes before = about_later;
        EXPECT_EQ(in(*table, about_later, 1).result, NatResult::fragment) << is_v6;
        EXPECT_EQ(about_later, before) << is_v6;
    }
}

// Steering: the port nat_inbound_steering() names is the flow's translated port, so
// owner_of_port() sends every answer (and every error about a flow) to the table holding it.
TEST(NatInboundPort, NamesTheTranslatedPortOfEveryAnswer) {
    for (bool is_v6 : {false, true}) {
        for (Proto proto : {Proto::tcp, Proto::udp, Proto::icmp}) {
            auto table = make_table();
            open_flow(*table, client_spec(is_v6, proto, 1111), 0);  // moves the port cursor
            const Spec sent = client_spec(is_v6, proto);
            const std::uint16_t port = open_flow(*table, sent, 0);
            Spec answer = reply_to(sent);
            answer.destination = is_v6 ? uplink6 : uplink4;
            (proto == Proto::icmp ? answer.source_port : answer.destination_port) = port;
            const Bytes reply = build(answer);
            EXPECT_EQ(
                nat_inbound_steering(reply.data(), static_cast<std::uint32_t>(reply.size())).port,
                port)
                << name(proto) << (is_v6 ? " v6" : " v4");

            Bytes outbound = build(sent);
            ASSERT_EQ(out(*table, outbound, 0).result, NatResult::translated);
            const Bytes error =
                icmp_error(is_v6 ? router6 : router4, is_v6 ? uplink6 : uplink4, is_v6 ? 3 : 11, 0,
                           0, Bytes(outbound.begin(), outbound.begin() + 48));
            EXPECT_EQ(
                nat_inbound_steering(error.data(), static_cast<std::uint32_t>(error.size())).port,
                port)
                << "error about " << name(proto) << (is_v6 ? " v6" : " v4");
        }
    }
}

TEST(NatInboundPort, NothingForPacketsWithoutOne) {
    Spec request = client_spec(false, Proto::icmp);  // an echo request is never an answer
    request.destination = uplink4;
    const Bytes cases[] = {
        build(request), Bytes(12, 0x45),                          // truncated IPv4
        Bytes{0x50, 0, 0, 0},                                     // no such IP version
        icmp_error(router4, uplink4, 11, 0, 0, Bytes(10, 0x45)),  // quote too short
    };
    for (const Bytes& packet : cases) {
        EXPECT_FALSE(
            nat_inbound_steering(packet.data(), static_cast<std::uint32_t>(packet.size())).port);
    }
}

TEST(NatIcmpErrors, ErrorsAboutOtherTrafficAreNotTranslated) {
    auto table = make_table();
    Spec sent = client_spec(false, Proto::udp);
    Bytes translated = build(sent);
    ASSERT_EQ(out(*table, translated, 0).result, NatResult::translated);

    // A quote whose source is not the uplink, or whose port maps to no flow.
    Bytes foreign = build(client_spec(false, Proto::udp));
    Bytes error = icmp_error(router4, uplink4, 11, 0, 0, foreign);
    Bytes before = error;
    EXPECT_EQ(in(*table, error, 1).result, NatResult::no_flow);
    EXPECT_EQ(error, before);
    Bytes unknown_port = translated;
    unknown_port[21] ^= 0x01;
    error = icmp_error(router4, uplink4, 11, 0, 0, unknown_port);
    EXPECT_EQ(in(*table, error, 1).result, NatResult::no_flow);
    // An IPv6 quote in an ICMPv4 error, and a quoted later fragment.
    Bytes v6_quote = build(client_spec(true, Proto::udp));
    error = icmp_error(router4, uplink4, 11, 0, 0, v6_quote);
    before = error;
    EXPECT_EQ(in(*table, error, 1).result, NatResult::malformed);
    EXPECT_EQ(error, before);
    Bytes fragment = translated;
    put16(&fragment[6], 185);
    error = icmp_error(router4, uplink4, 11, 0, 0, fragment);
    EXPECT_EQ(in(*table, error, 1).result, NatResult::fragment);
    // After the flow has expired (UDP: 300 s), its errors are stale too.
    error = icmp_error(router4, uplink4, 11, 0, 0, translated);
    EXPECT_EQ(in(*table, error, 299).result, NatResult::translated);
    error = icmp_error(router4, uplink4, 11, 0, 0, translated);
    EXPECT_EQ(in(*table, error, 300).result, NatResult::no_flow);
}

// ---- port allocation ----------------------------------------------------------------------

TEST(NatPorts, DistinctWithinTheRangeThenSharedAcrossRemotesThenExhausted) {
    const PortRange range{5000, 5015};
    auto table = make_table(test_options(64, range));
    std::set<std::uint16_t> ports;
    for (std::uint16_t i = 0; i < range.size(); ++i) {
        std::uint16_t port = open_flow(*table, client_spec(false, Proto::udp, 40000 + i), 0);
        EXPECT_TRUE(range.contains(port)) << port;
        ports.insert(port);
    }
    EXPECT_EQ(ports.size(), range.size());

    // Every port is in use toward 203.0.113.7:443: one more flow there cannot be told apart.
    Bytes packet = build(client_spec(false, Proto::udp, 41000));
    const Bytes before = packet;
    EXPECT_EQ(out(*table, packet, 0).result, NatResult::ports_exhausted);
    EXPECT_EQ(packet, before);
    EXPECT_EQ(table->counters().refused, 1u);

    // Toward another remote endpoint a port can be shared: the reverse key differs.
    Spec elsewhere = client_spec(false, Proto::udp, 41000);
    elsewhere.destination_port = 53;
    std::uint16_t shared = open_flow(*table, elsewhere, 0);
    EXPECT_TRUE(range.contains(shared));
    Spec answer = reply_to(elsewhere);
    answer.destination = uplink4;
    answer.destination_port = shared;
    packet = build(answer);
    ASSERT_EQ(in(*table, packet, 1).result, NatResult::translated);
    EXPECT_EQ(packet, build(reply_to(elsewhere)));

    // Other protocols have their own ports; IPv6 flows their own reverse keys.
    EXPECT_TRUE(range.contains(open_flow(*table, client_spec(false, Proto::tcp, 40000), 0)));
    EXPECT_TRUE(range.contains(open_flow(*table, client_spec(false, Proto::icmp, 40000), 0)));
    EXPECT_TRUE(range.contains(open_flow(*table, client_spec(true, Proto::udp, 40000), 0)));
}

TEST(NatPorts, AFreedPortIsReusedAfterExpiry) {
    auto table = make_table(test_options(64, {7000, 7000}));
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 40000), 0), 7000);
    Bytes packet = build(client_spec(false, Proto::udp, 40001));
    EXPECT_EQ(out(*table, packet, 10).result, NatResult::ports_exhausted);
    EXPECT_EQ(expire_all(*table, 299).size(), 0u);
    EXPECT_EQ(expire_all(*table, 300).size(), 1u);
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 40001), 301), 7000);
    EXPECT_EQ(table->counters().created, 2u);
    EXPECT_EQ(table->counters().refused, 1u);
}

TEST(NatPorts, PortsComeFromACursorNotStraightBackAfterRelease) {
    auto table = make_table(test_options(64, {6000, 6003}));
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 1), 0), 6000);
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 2), 100), 6001);
    EXPECT_EQ(expire_all(*table, 300).size(), 1u);  // frees 6000
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 3), 300), 6002);
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 4), 300), 6003);
    EXPECT_EQ(open_flow(*table, client_spec(false, Proto::udp, 5), 300), 6000);
}

// ---- limits -------------------------------------------------------------------------------

TEST(NatLimits, AFullTableRefusesNewFlowsAndKeepsTheOldOnes) {
    auto table = make_table(test_options(8));
    std::vector<Spec> flows;
    for (std::uint16_t i = 0; i < 8; ++i) {
        flows.push_back(client_spec(i % 2 == 1, i % 3 == 0 ? Proto::tcp : Proto::udp, 100 + i));
        open_flow(*table, flows.back(), 0);
    }
    for (std::uint16_t i = 0; i < 3; ++i) {
        Bytes packet = build(client_spec(false, Proto::udp, 200 + i));
        const Bytes before = packet;
        EXPECT_EQ(out(*table, packet, 1).result, NatResult::table_full);
        EXPECT_EQ(packet, before);
    }
    EXPECT_EQ(table->counters().refused, 3u);
    EXPECT_EQ(table->counters().active, 8u);
    for (const Spec& sent : flows) {
        Bytes packet = build(sent);
        NatOutcome outcome = out(*table, packet, 2);
        ASSERT_EQ(outcome.result, NatResult::translated);
        EXPECT_FALSE(outcome.created);
        Spec translated = sent;
        translated.source = sent.source.is_v6 ? uplink6 : uplink4;
        translated.source_port = table->flow(outcome.flow).translated_port;
        EXPECT_EQ(packet, build(translated));
        Bytes answer = build(reply_to(translated));
        ASSERT_EQ(in(*table, answer, 2).result, NatResult::translated);
        EXPECT_EQ(answer, build(reply_to(sent)));
    }
}

// Expiry takes both of a flow's keys out of their indexes (rebuilt from its record, as the
// packets' keys were built from their headers): a key left behind would hold its slot, and a
// table cycling through many short flows would soon refuse every new one as full.
TEST(NatLimits, ExpiredFlowsLeaveBothIndexes) {
    auto table = make_table(test_options(8));
    for (std::uint16_t round = 0; round < 100; ++round) {
        const std::uint64_t now = round * 1000u;
        for (std::uint16_t i = 0; i < 8; ++i) {
            const Spec flow = client_spec(i % 2 == 1, Proto::udp,
                                          static_cast<std::uint16_t>(1000 + round * 8 + i));
            Bytes packet = build(flow);
            ASSERT_EQ(out(*table, packet, now).result, NatResult::translated)
                << "round " << round << " flow " << i;
        }
        ASSERT_EQ(expire_all(*table, now + 999).size(), 8u) << "round " << round;
    }
    EXPECT_EQ(table->counters().created, 800u);
    EXPECT_EQ(table->counters().refused, 0u);
}

TEST(NatLimits, BadOptionsAreRefusedAtConstruction) {
    EXPECT_THROW(make_table(test_options(4)), std::invalid_argument);
    EXPECT_THROW(make_table(test_options(64, {10, 9})), std::invalid_argument);
    // Names only label the allocations: two tables may share one.
    NatTable first("nat_test_same", test_options());
    NatTable second("nat_test_same", test_options());
}

// ---- timeouts (fake clock in seconds) ---------------------------------------------------

void send_tcp(NatTable& table, const Spec& client, std::uint8_t flags, bool outbound,
              std::uint64_t now) {
    Spec spec = client;
    spec.tcp_flags = flags;
    if (!outbound) {
        spec = reply_to(client);
        spec.tcp_flags = flags;
        spec.destination = client.source.is_v6 ? uplink6 : uplink4;
        // The translated port: the first flow of a fresh table.
        spec.destination_port = table.ports().first;
    }
    Bytes packet = build(spec);
    NatOutcome outcome = outbound ? out(table, packet, now) : in(table, packet, now);
    ASSERT_EQ(outcome.result, NatResult::translated);
}

constexpr std::uint8_t fin = 0x01, syn = 0x02, rst = 0x04, ack = 0x10;

TEST(NatTimeouts, UdpAndIcmp) {
    for (auto [proto, timeout] : {std::pair{Proto::udp, 300}, std::pair{Proto::icmp, 60}}) {
        auto table = make_table();
        open_flow(*table, client_spec(false, proto), 1000);
        EXPECT_EQ(expire_all(*table, 1000 + timeout - 1).size(), 0u) << name(proto);
        EXPECT_EQ(expire_all(*table, 1000 + timeout).size(), 1u) << name(proto);
        EXPECT_EQ(table->counters().expired, 1u);
        EXPECT_EQ(table->counters().active, 0u);
    }
}

TEST(NatTimeouts, EveryPacketRefreshesTheFlow) {
    auto table = make_table();
    Spec sent = client_spec(true, Proto::udp);
    std::uint16_t port = open_flow(*table, sent, 0);
    Spec answer = reply_to(sent);
    answer.destination = uplink6;
    answer.destination_port = port;
    Bytes packet = build(answer);
    ASSERT_EQ(in(*table, packet, 200).result, NatResult::translated);
    EXPECT_EQ(expire_all(*table, 499).size(), 0u);
    EXPECT_EQ(expire_all(*table, 500).size(), 1u);
}

TEST(NatTimeouts, TcpByState) {
    const Spec client = client_spec(false, Proto::tcp);
    {  // a SYN nobody answered: transitory
        auto table = make_table();
        send_tcp(*table, client, syn, true, 0);
        EXPECT_EQ(table->flow(0).tcp_state, TcpState::opening);
        EXPECT_EQ(expire_all(*table, 239).size(), 0u);
        EXPECT_EQ(expire_all(*table, 240).size(), 1u);
    }
    {  // the three-way handshake completes: established
        auto table = make_table();
        send_tcp(*table, client, syn, true, 0);
        send_tcp(*table, client, syn | ack, false, 1);
        EXPECT_EQ(table->flow(0).tcp_state, TcpState::opening);
        send_tcp(*table, client, ack, true, 2);
        EXPECT_EQ(table->flow(0).tcp_state, TcpState::established);
        EXPECT_EQ(expire_all(*table, 2 + 7439).size(), 0u);
        EXPECT_EQ(expire_all(*table, 2 + 7440).size(), 1u);
    }
    for (auto [flags, outbound] : {std::pair<std::uint8_t, bool>{fin | ack, true},
                                   std::pair<std::uint8_t, bool>{rst, false}}) {
        auto table = make_table();  // established, then FIN out or RST in: closing
        send_tcp(*table, client, syn, true, 0);
        send_tcp(*table, client, syn | ack, false, 1);
        send_tcp(*table, client, ack, true, 2);
        send_tcp(*table, client, flags, outbound, 10);
        EXPECT_EQ(table->flow(0).tcp_state, TcpState::closing);
        EXPECT_EQ(expire_all(*table, 10 + 239).size(), 0u);
        EXPECT_EQ(expire_all(*table, 10 + 240).size(), 1u);
    }
    {  // a new SYN on a closing tuple (before it expired) reopens it
        auto table = make_table();
        send_tcp(*table, client, syn, true, 0);
        send_tcp(*table, client, rst | ack, false, 1);
        EXPECT_EQ(table->flow(0).tcp_state, TcpState::closing);
        send_tcp(*table, client, syn, true, 2);
        EXPECT_EQ(table->flow(0).tcp_state, TcpState::opening);
    }
}

TEST(NatTimeouts, ConfigurableAndInTicks) {
    NatOptions options = test_options();
    options.ticks_per_second = 1000;  // `now` in milliseconds
    options.timeouts.udp = 5;
    auto table = make_table(options);
    open_flow(*table, client_spec(false, Proto::udp), 0);
    EXPECT_EQ(expire_all(*table, 4999).size(), 0u);
    EXPECT_EQ(expire_all(*table, 5000).size(), 1u);
}

TEST(NatTimeouts, AnExpiredFlowIsGoneBeforeItIsSwept) {
    auto table = make_table();
    Spec sent = client_spec(false, Proto::udp);
    Bytes packet = build(sent);
    NatOutcome first = out(*table, packet, 0);
    ASSERT_EQ(first.result, NatResult::translated);
    Spec answer = reply_to(sent);
    answer.destination = uplink4;
    answer.destination_port = table->flow(first.flow).translated_port;
    Bytes reply = build(answer);
    ASSERT_EQ(in(*table, reply, 299).result, NatResult::translated);

    // 300 s after the last packet: the answer no longer gets in.
    reply = build(answer);
    const Bytes before = reply;
    EXPECT_EQ(in(*table, reply, 599).result, NatResult::no_flow);
    EXPECT_EQ(reply, before);

    // The client speaks again: a new flow, and the old one is reported with its bytes.
    packet = build(sent);
    NatOutcome again = out(*table, packet, 600);
    ASSERT_EQ(again.result, NatResult::translated);
    EXPECT_TRUE(again.created);
    EXPECT_EQ(table->flow(again.flow).packets_out, 1u);
    EXPECT_EQ(table->flow(again.flow).created, 600u);
    std::vector<NatFlowRecord> ended = expire_all(*table, 600);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].created, 0u);
    EXPECT_EQ(ended[0].last_seen, 299u);
    EXPECT_EQ(ended[0].bytes_out, packet.size());
    EXPECT_EQ(ended[0].bytes_in, reply.size());
    EXPECT_EQ(table->counters().created, 2u);
    EXPECT_EQ(table->counters().expired, 1u);
    EXPECT_EQ(table->counters().active, 1u);
}

// The flow log must name the right peer: when an inner address moves to another peer, the
// old peer's flow ends and a new one starts.
TEST(NatTimeouts, AnotherPeerOnTheSameTupleStartsANewFlow) {
    auto table = make_table();
    Spec sent = client_spec(false, Proto::tcp);
    open_flow(*table, sent, 0, peer_a);
    Bytes packet = build(sent);
    NatOutcome outcome = out(*table, packet, 5, peer_b);
    EXPECT_TRUE(outcome.created);
    EXPECT_EQ(outcome.peer, peer_b);
    std::vector<NatFlowRecord> ended = expire_all(*table, 6);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].peer, peer_a);
}

// ---- expire() ---------------------------------------------------------------------------------

TEST(NatExpire, BoundedByItsBudgetAndReportsBytesEachWay) {
    auto table = make_table(test_options(16));
    std::vector<std::uint16_t> inner_ports;
    for (std::uint16_t i = 0; i < 10; ++i) {
        Spec sent = client_spec(false, Proto::udp, 100 + i);
        sent.payload = pattern(i);
        std::uint16_t port = open_flow(*table, sent, i < 5 ? 0 : 200);
        Bytes second = build(sent);
        out(*table, second, i < 5 ? 0 : 200);
        Spec answer = reply_to(sent);
        answer.destination = uplink4;
        answer.destination_port = port;
        Bytes reply = build(answer);
        ASSERT_EQ(in(*table, reply, i < 5 ? 0 : 200).result, NatResult::translated);
    }
    // At 350 the five flows from time 0 have expired, the five from 200 have not.
    std::vector<NatFlowRecord> ended;
    unsigned calls = 0;
    while (table->counters().active > 5) {
        std::vector<NatFlowRecord> records(16);
        unsigned count = table->expire(350, 3, records);
        EXPECT_LE(count, 3u);
        ended.insert(ended.end(), records.begin(), records.begin() + count);
        ASSERT_LT(++calls, 10u);
    }
    EXPECT_GE(calls, 2u);  // 16 slots at 3 per call: not in one go
    ASSERT_EQ(ended.size(), 5u);
    for (const NatFlowRecord& record : ended) {
        std::size_t packet_size = 20 + 8 + (record.inner_port - 100);
        EXPECT_LT(record.inner_port, 105);
        EXPECT_EQ(record.peer, peer_a);
        EXPECT_EQ(record.packets_out, 2u);
        EXPECT_EQ(record.bytes_out, 2 * packet_size);
        EXPECT_EQ(record.packets_in, 1u);
        EXPECT_EQ(record.bytes_in, packet_size);
        EXPECT_EQ(record.protocol, IPPROTO_UDP);
        EXPECT_EQ(record.inner_address, inner4);
        EXPECT_EQ(record.remote_address, remote4);
        EXPECT_EQ(record.remote_port, 443);
    }
    EXPECT_EQ(table->counters().expired, 5u);

    // A record array smaller than the work: stops when it is full, the rest comes next time.
    std::vector<NatFlowRecord> two(2);
    EXPECT_EQ(table->expire(1000, 100, two), 2u);
    EXPECT_EQ(table->counters().active, 3u);
    EXPECT_EQ(expire_all(*table, 1000).size(), 3u);
    // No flow log: an empty span still removes flows.
    open_flow(*table, client_spec(false, Proto::udp), 2000);
    EXPECT_EQ(table->expire(3000, 16, {}), 0u);
    EXPECT_EQ(table->counters().active, 0u);
}

// sweep_due(): the sweep goes round the table once per quarter of the shortest timeout,
// whatever the call rate, and at full speed when the table is nearly full.
TEST(NatExpire, SweepIsPacedToAQuarterOfTheShortestTimeout) {
    NatOptions options = test_options(1024);
    options.ticks_per_second = 1'000'000;  // ICMP's 60 s is the shortest: 15 s per sweep
    auto table = make_table(options);
    const std::uint64_t period = 15'000'000;
    const std::uint64_t per_entry = period / 1024;

    std::uint64_t now = 1'000'000'000;
    EXPECT_EQ(table->sweep_due(now, 64), 64u);  // the first call: owed everything, gets the cap
    EXPECT_EQ(table->sweep_due(now, 64), 0u);
    EXPECT_EQ(table->sweep_due(now + per_entry - 1, 64), 0u);
    EXPECT_EQ(table->sweep_due(now + 10 * per_entry, 64), 10u);
    now += 10 * per_entry;

    // Called often, over one period: every entry once, the remainders carried between calls.
    std::uint64_t visited = 0;
    const std::uint64_t step = per_entry / 3 + 1;
    const std::uint64_t end = now + 1024 * per_entry;
    while (now + step <= end) {
        now += step;
        visited += table->sweep_due(now, 64);
    }
    visited += table->sweep_due(end, 64);
    EXPECT_EQ(visited, 1024u);

    // After a long gap only one call's worth is owed.
    EXPECT_EQ(table->sweep_due(end + 100 * period, 64), 64u);
    EXPECT_EQ(table->sweep_due(end + 100 * period + per_entry, 64), 1u);
}

TEST(NatExpire, SweepRunsAtFullSpeedWhenTheTableIsNearlyFull) {
    NatOptions options = test_options(64, {20000, 20999});
    options.ticks_per_second = 1'000'000;
    auto table = make_table(options);
    const std::uint64_t now = 1'000'000'000;
    table->sweep_due(now, 64);
    for (std::uint16_t i = 0; i < 56; ++i) {  // 8 free of 64: exactly 1/8, still paced
        open_flow(*table, client_spec(false, Proto::udp, static_cast<std::uint16_t>(1000 + i)),
                  now);
    }
    EXPECT_EQ(table->sweep_due(now, 16), 0u);
    open_flow(*table, client_spec(false, Proto::udp, 2000), now);  // 7 free: under 1/8
    EXPECT_EQ(table->sweep_due(now, 16), 16u);
    EXPECT_EQ(table->sweep_due(now, 16), 16u);
}

// ---- bursts ----------------------------------------------------------------------------------

struct Burst {
    std::vector<Bytes> packets;
    std::vector<std::uint8_t*> ips;
    std::vector<std::uint32_t> lengths;
    explicit Burst(std::vector<Bytes> contents) : packets(std::move(contents)) {
        for (Bytes& packet : packets) {
            ips.push_back(packet.data());
            lengths.push_back(static_cast<std::uint32_t>(packet.size()));
        }
    }
};

void expect_same(const NatOutcome& a, const NatOutcome& b, std::size_t i) {
    EXPECT_EQ(a.result, b.result) << "packet " << i;
    EXPECT_EQ(a.peer, b.peer) << "packet " << i;
    EXPECT_EQ(a.created, b.created) << "packet " << i;
    if (a.result == NatResult::translated) {
        EXPECT_EQ(a.flow, b.flow) << "packet " << i;
    }
}

// The burst calls must give exactly the single calls' answers: new flows (two packets of the
// same new flow in one burst among them), a full table, malformed and unsupported packets,
// ICMP errors, more packets than one bulk lookup holds.
TEST(NatBurst, SameOutcomesAndBytesAsOneByOne) {
    const NatOptions options = test_options(24, {9000, 9031});
    auto single = make_table(options);
    auto burst = make_table(options);
    std::vector<Spec> specs;
    std::vector<Bytes> outbound;
    for (std::uint16_t i = 0; i < 70; ++i) {
        Spec spec = client_spec(i % 4 == 2,
                                i % 3 == 0   ? Proto::tcp
                                : i % 3 == 1 ? Proto::udp
                                             : Proto::icmp,
                                static_cast<std::uint16_t>(100 + i));
        if (i % 7 == 3) {
            spec = specs.back();  // the previous packet's flow again
        }
        specs.push_back(spec);
        Bytes packet = build(spec);
        if (i % 11 == 5) {
            packet.resize(packet.size() - 1);  // malformed
        }
        if (i % 13 == 6) {
            packet[packet[0] >> 4 == 4 ? 9 : 6] = 47;  // unsupported
        }
        outbound.push_back(packet);
    }
    std::vector<NatOutcome> expected;
    std::vector<Bytes> translated_singly = outbound;
    for (Bytes& packet : translated_singly) {
        expected.push_back(out(*single, packet, 5));
    }
    Burst sent(outbound);
    std::vector<PeerId> peers(sent.packets.size(), peer_a);
    std::vector<NatOutcome> outcomes(sent.packets.size());
    burst->translate_outbound_burst(sent.ips.data(), sent.lengths.data(), peers.data(),
                                    static_cast<unsigned>(sent.packets.size()), 5, outcomes.data());
    ASSERT_GT(burst->counters().refused, 0u);  // the table filled up on the way
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        expect_same(outcomes[i], expected[i], i);
        EXPECT_EQ(sent.packets[i], translated_singly[i]) << "packet " << i;
    }

    // Back in: the answers to every translated packet, an error quoting one, strays.
    std::vector<Bytes> inbound;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        if (expected[i].result != NatResult::translated) {
            continue;
        }
        Spec translated = specs[i];
        translated.source = translated.source.is_v6 ? uplink6 : uplink4;
        translated.source_port = single->flow(expected[i].flow).translated_port;
        inbound.push_back(build(reply_to(translated)));
        if (i % 5 == 0) {
            const Bytes& quote = translated_singly[i];
            inbound.push_back(icmp_error(specs[i].source.is_v6 ? router6 : router4,
                                         translated.source, specs[i].source.is_v6 ? 3 : 11, 0, 0,
                                         Bytes(quote.begin(), quote.begin() + 48)));
        }
    }
    Spec stray = reply_to(client_spec(false, Proto::udp));
    stray.destination = uplink4;
    stray.destination_port = 9031;
    inbound.push_back(build(stray));
    inbound.push_back(Bytes{0x45, 0x00});
    std::vector<Bytes> answered_singly = inbound;
    expected.clear();
    for (Bytes& packet : answered_singly) {
        expected.push_back(in(*single, packet, 6));
    }
    Burst answers(inbound);
    outcomes.assign(answers.packets.size(), {});
    burst->translate_inbound_burst(answers.ips.data(), answers.lengths.data(),
                                   static_cast<unsigned>(answers.packets.size()), 6,
                                   outcomes.data());
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        expect_same(outcomes[i], expected[i], i);
        EXPECT_EQ(answers.packets[i], answered_singly[i]) << "packet " << i;
    }
    EXPECT_EQ(expected.back().result, NatResult::malformed);
}

// A burst parses each packet into a slot the last refused packet may have used: nothing of that
// packet may carry over. Here a first fragment NAT refuses (GRE) and then a whole UDP datagram
// between the same hosts, with the same identification: had the datagram inherited "first
// fragment", its flow would be remembered for the refused datagram, whose later fragments
// would then leave translated instead of being refused.
TEST(NatBurst, APacketInheritsNothingFromARefusedOne) {
    for (bool is_v6 : {false, true}) {
        auto table = make_table();
        Spec spec = client_spec(is_v6, Proto::udp);
        Bytes refused;
        Bytes later;
        if (is_v6) {
            // IPv6 first fragment: a fragment header (44) before GRE, "more fragments" set.
            refused = build(spec);
            const Bytes fragment_header{47, 0, 0x00, 0x01, 0x00, 0x00, 0x12, 0x34};
            refused.insert(refused.begin() + 40, fragment_header.begin(), fragment_header.end());
            refused[6] = 44;
            put16(&refused[4], static_cast<std::uint16_t>(refused.size() - 40));
            later = refused;
            later[40] = IPPROTO_UDP;
            put16(&later[42], 185 << 3);  // offset 1480, the last
        } else {
            Spec first = spec;
            first.ipv4_fragment = 0x2000;
            refused = build(first);
            refused[9] = 47;
            Spec last = spec;
            last.ipv4_fragment = 185;
            later = build(last);
        }
        Burst sent({refused, build(spec)});
        const std::vector<PeerId> peers(2, peer_a);
        NatOutcome outcomes[2];
        table->translate_outbound_burst(sent.ips.data(), sent.lengths.data(), peers.data(), 2, 0,
                                        outcomes);
        ASSERT_EQ(outcomes[0].result, NatResult::unsupported_protocol) << is_v6;
        ASSERT_EQ(outcomes[1].result, NatResult::translated) << is_v6;
        EXPECT_EQ(out(*table, later, 1).result, NatResult::fragment) << is_v6;
        EXPECT_EQ(table->counters().fragments, 0u) << is_v6;
    }
}

// ---- MSS clamping ---------------------------------------------------------------------------

Spec syn_with_options(bool is_v6, Bytes options) {
    Spec spec = client_spec(is_v6, Proto::tcp);
    spec.tcp_flags = syn;
    spec.tcp_options = std::move(options);
    return spec;
}

TEST(NatMss, ClampsLargerValuesAlignedOrNot) {
    for (bool is_v6 : {false, true}) {
        // MSS first (aligned value), or after a NOP (value at an odd offset).
        for (bool odd : {false, true}) {
            Bytes options =
                odd ? Bytes{1, 2, 4, 0x05, 0xb4, 1, 1, 0} : Bytes{2, 4, 0x05, 0xb4, 1, 3, 3, 7};
            Bytes clamped_options = options;
            clamped_options[odd ? 3 : 2] = 0x05, clamped_options[odd ? 4 : 3] = 0x64;  // 1380
            Bytes packet = build(syn_with_options(is_v6, options));
            auto buffer = packet;
            EXPECT_TRUE(
                clamp_tcp_mss(buffer.data(), static_cast<std::uint32_t>(buffer.size()), 1380));
            EXPECT_EQ(buffer, build(syn_with_options(is_v6, clamped_options)))
                << (is_v6 ? "v6" : "v4") << (odd ? " odd" : " even");

            // Already small enough, or not a SYN: untouched.
            buffer = packet;
            EXPECT_FALSE(
                clamp_tcp_mss(buffer.data(), static_cast<std::uint32_t>(buffer.size()), 1460));
            EXPECT_EQ(buffer, packet);
            Spec not_syn = syn_with_options(is_v6, options);
            not_syn.tcp_flags = ack;
            buffer = build(not_syn);
            EXPECT_FALSE(
                clamp_tcp_mss(buffer.data(), static_cast<std::uint32_t>(buffer.size()), 1380));
        }
    }
    // A SYN-ACK coming in is clamped as well.
    Spec syn_ack = syn_with_options(false, {2, 4, 0x23, 0x28});  // 9000
    syn_ack.tcp_flags = syn | ack;
    Bytes packet = build(syn_ack);
    EXPECT_TRUE(clamp_tcp_mss(packet.data(), static_cast<std::uint32_t>(packet.size()), 1380));
    syn_ack.tcp_options = {2, 4, 0x05, 0x64};
    EXPECT_EQ(packet, build(syn_ack));
}

TEST(NatMss, BrokenOptionsAreLeftAlone) {
    for (Bytes options : {Bytes{2, 0, 0x05, 0xb4}, Bytes{2, 9, 0x05, 0xb4}, Bytes{1, 1, 1, 2},
                          Bytes{0, 2, 4, 0x05}, Bytes{2, 3, 0x05, 0xb4}}) {
        Bytes packet = build(syn_with_options(false, options));
        Bytes buffer = packet;
        EXPECT_FALSE(clamp_tcp_mss(buffer.data(), static_cast<std::uint32_t>(buffer.size()), 536));
        EXPECT_EQ(buffer, packet);
    }
    Bytes udp = build(client_spec(false, Proto::udp));
    EXPECT_FALSE(clamp_tcp_mss(udp.data(), static_cast<std::uint32_t>(udp.size()), 536));
}

// ---- malformed input --------------------------------------------------------------------------

void expect_malformed(NatTable& table, Bytes packet, const std::string& what) {
    const Bytes before = packet;
    EXPECT_EQ(out(table, packet, 0).result, NatResult::malformed) << what << " (out)";
    EXPECT_EQ(packet, before) << what;
    EXPECT_EQ(in(table, packet, 0).result, NatResult::malformed) << what << " (in)";
    EXPECT_EQ(packet, before) << what;
    Bytes copy = packet;
    EXPECT_FALSE(clamp_tcp_mss(copy.data(), static_cast<std::uint32_t>(copy.size()), 500));
    EXPECT_EQ(copy, before) << what;
}

TEST(NatMalformed, EveryTruncationAndBrokenHeaders) {
    auto table = make_table();
    for (bool is_v6 : {false, true}) {
        for (Proto proto : {Proto::tcp, Proto::udp, Proto::icmp}) {
            Spec spec = client_spec(is_v6, proto);
            spec.tcp_flags = syn;
            spec.tcp_options = {2, 4, 0x05, 0xb4};
            const Bytes packet = build(spec);
            for (std::size_t length = 0; length < packet.size(); ++length) {
                expect_malformed(*table, Bytes(packet.begin(), packet.begin() + length),
                                 std::string(name(proto)) + " cut to " + std::to_string(length));
            }
        }
    }
    const Bytes tcp4 = build(client_spec(false, Proto::tcp));
    Bytes broken = tcp4;
    broken[0] = 0x44;  // IHL 4
    expect_malformed(*table, broken, "IHL 4");
    broken = tcp4;
    broken[0] = 0x55;  // version 5
    expect_malformed(*table, broken, "version 5");
    broken = tcp4;
    put16(&broken[2], 19);  // total length shorter than the header
    expect_malformed(*table, broken, "total length 19");
    broken = tcp4;
    put16(&broken[2], static_cast<std::uint16_t>(tcp4.size() + 1));  // longer than the buffer
    expect_malformed(*table, broken, "total length beyond the buffer");
    broken = tcp4;
    broken[20 + 12] = 0x40;  // TCP data offset 4
    expect_malformed(*table, broken, "TCP data offset 4");
    broken = tcp4;
    broken[20 + 12] = 0xF0;  // TCP header longer than the packet
    expect_malformed(*table, broken, "TCP data offset 15");
    broken = build(client_spec(false, Proto::udp));
    put16(&broken[2], 27);  // 7 bytes of UDP
    expect_malformed(*table, broken, "short UDP");
    // A TCP segment of 8 to 19 bytes that the IP length describes truly, on a buffer of
    // exactly that length: the data offset (byte 12) lies past the end of the shortest ones.
    // fuzz_nat found the read past the end that this once made (ASan).
    for (bool is_v6 : {false, true}) {
        for (std::size_t segment = 8; segment < 20; ++segment) {
            Bytes cut = build(client_spec(is_v6, Proto::tcp));
            const std::size_t header = is_v6 ? 40 : 20;
            cut.resize(header + segment);
            if (is_v6) {
                put16(&cut[4], static_cast<std::uint16_t>(segment));
            } else {
                put16(&cut[2], static_cast<std::uint16_t>(cut.size()));
                put16(&cut[10], 0);
                put16(&cut[10], finish(add_words(cut.data(), 20)));
            }
            expect_malformed(*table, cut,
                             std::string(is_v6 ? "IPv6" : "IPv4") + " TCP segment of " +
                                 std::to_string(segment) + " bytes");
        }
    }
    broken = build(client_spec(true, Proto::udp));
    put16(&broken[4], static_cast<std::uint16_t>(broken.size()));  // payload beyond the buffer
    expect_malformed(*table, broken, "IPv6 payload length");
    broken = build(client_spec(true, Proto::udp));
    put16(&broken[4], 0);  // a jumbogram
    expect_malformed(*table, broken, "IPv6 jumbogram");
    EXPECT_EQ(table->counters().created, 0u);

    // Trailing bytes past the IP length (Ethernet padding) are fine and stay as they were.
    Bytes padded = build(client_spec(false, Proto::udp));
    padded.insert(padded.end(), {0xee, 0xee, 0xee});
    ASSERT_EQ(out(*table, padded, 0).result, NatResult::translated);
    EXPECT_EQ(padded[padded.size() - 1], 0xee);
}

}  // namespace
}  // namespace meshgate::dataplane
