// Exit policy: every local range is recognised at its edges (first and last address inside,
// first outside), attached subnets count as local, IPv4-mapped IPv6 follows the IPv4 rule,
// and the verdict follows the permissions table of DESIGN.md ("Exit node defaults").
#include "dataplane/exit_policy.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/load.hpp"
#include "crypto/keys.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::dataplane {
namespace {

IpAddress ip(const std::string& text) {
    IpAddress address;
    if (text.find(':') != std::string::npos) {
        address.is_v6 = true;
        EXPECT_EQ(::inet_pton(AF_INET6, text.c_str(), address.bytes.data()), 1) << text;
    } else {
        EXPECT_EQ(::inet_pton(AF_INET, text.c_str(), address.bytes.data()), 1) << text;
    }
    return address;
}

Prefix prefix(const std::string& text, std::uint8_t length) {
    return Prefix{ip(text), length};
}

TEST(LocalDestinations, BuiltinRangesAtTheirEdges) {
    const LocalDestinations local;
    const std::vector<std::string> inside = {"10.0.0.0",
                                             "10.255.255.255",
                                             "172.16.0.0",
                                             "172.31.255.255",
                                             "192.168.0.0",
                                             "192.168.255.255",
                                             "100.64.0.0",
                                             "100.127.255.255",
                                             "169.254.0.0",
                                             "169.254.169.254",
                                             "169.254.255.255",
                                             "127.0.0.1",
                                             "127.255.255.255",
                                             "0.0.0.0",
                                             "0.255.255.255",
                                             "224.0.0.1",
                                             "239.255.255.255",
                                             "255.255.255.255",
                                             "::1",
                                             "::",
                                             "fc00::",
                                             "fd12:3456::1",
                                             "fdff:ffff::",
                                             "fe80::1",
                                             "febf:ffff::1",
                                             "ff02::1",
                                             "ff0e::101",
                                             "::ffff:10.1.2.3",
                                             "::ffff:192.168.1.1",
                                             "::ffff:127.0.0.1"};
    for (const std::string& address : inside) {
        EXPECT_TRUE(local.is_local(ip(address))) << address;
    }
    const std::vector<std::string> outside = {"9.255.255.255",
                                              "11.0.0.0",
                                              "172.15.255.255",
                                              "172.32.0.0",
                                              "192.167.255.255",
                                              "192.169.0.0",
                                              "100.63.255.255",
                                              "100.128.0.0",
                                              "169.253.255.255",
                                              "169.255.0.0",
                                              "126.255.255.255",
                                              "128.0.0.0",
                                              "1.0.0.0",
                                              "223.255.255.255",
                                              "240.0.0.0",
                                              "255.255.255.254",
                                              "8.8.8.8",
                                              "203.0.113.10",
                                              "::2",
                                              "2001:db8::1",
                                              "2606:4700::1111",
                                              "fbff:ffff::1",
                                              "fe00::1",
                                              "fec0::1",
                                              "feff::1",
                                              "::ffff:8.8.8.8",
                                              "::fffe:10.1.2.3",
                                              "64:ff9b::a01:203"};
    for (const std::string& address : outside) {
        EXPECT_FALSE(local.is_local(ip(address))) << address;
    }
}

TEST(LocalDestinations, AttachedSubnetsAreLocal) {
    // Host bits set as in a port's address; ignored.
    const std::vector<Prefix> attached = {prefix("203.0.113.1", 24), prefix("2001:db8:1:2::1", 64),
                                          prefix("198.51.100.7", 32),
                                          prefix("2001:db8:ffff::", 120)};
    const LocalDestinations local(attached);
    EXPECT_TRUE(local.is_local(ip("203.0.113.0")));
    EXPECT_TRUE(local.is_local(ip("203.0.113.255")));
    EXPECT_FALSE(local.is_local(ip("203.0.114.0")));
    EXPECT_FALSE(local.is_local(ip("203.0.112.255")));
    EXPECT_TRUE(local.is_local(ip("198.51.100.7")));
    EXPECT_FALSE(local.is_local(ip("198.51.100.8")));
    EXPECT_TRUE(local.is_local(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(local.is_local(ip("2001:db8:1:3::")));
    EXPECT_TRUE(local.is_local(ip("2001:db8:ffff::ff")));
    EXPECT_FALSE(local.is_local(ip("2001:db8:ffff::100")));
    // An IPv4-mapped address is judged by the IPv4 rules, attached subnets included.
    EXPECT_TRUE(local.is_local(ip("::ffff:203.0.113.9")));
    // Unrelated ranges stay public.
    EXPECT_FALSE(local.is_local(ip("8.8.8.8")));
    EXPECT_FALSE(local.is_local(ip("2001:db8:2::1")));
}

// The exit path's tunnel-subnet check: only the given prefixes, none of the fixed ranges.
TEST(LocalDestinations, WithoutBuiltinRangesOnlyTheGivenSubnets) {
    const std::vector<Prefix> tunnel = {prefix("10.100.0.1", 24), prefix("fd00:100::1", 64)};
    const LocalDestinations only(tunnel, false);
    EXPECT_TRUE(only.is_local(ip("10.100.0.77")));
    EXPECT_TRUE(only.is_local(ip("fd00:100::77")));
    EXPECT_FALSE(only.is_local(ip("10.100.1.1")));
    EXPECT_FALSE(only.is_local(ip("192.168.1.1")));
    EXPECT_FALSE(only.is_local(ip("fe80::1")));
    EXPECT_FALSE(LocalDestinations({}, false).is_local(ip("127.0.0.1")));
}

// Prefixes shorter than a byte span several first bytes: the first-byte filter in front of
// the scan must pass every one of them, and no neighbour.
TEST(LocalDestinations, PrefixesShorterThanAByteCoverEveryFirstByteTheySpan) {
    const std::vector<Prefix> wide = {prefix("64.0.0.0", 2), prefix("2000::", 3),
                                      prefix("0.0.0.0", 0)};
    const LocalDestinations two(std::span<const Prefix>(wide.data(), 2), false);
    EXPECT_FALSE(two.is_local(ip("63.255.255.255")));
    EXPECT_TRUE(two.is_local(ip("64.0.0.0")));
    EXPECT_TRUE(two.is_local(ip("100.1.2.3")));
    EXPECT_TRUE(two.is_local(ip("127.255.255.255")));
    EXPECT_FALSE(two.is_local(ip("128.0.0.0")));
    EXPECT_FALSE(two.is_local(ip("1fff:ffff::")));
    EXPECT_TRUE(two.is_local(ip("2000::")));
    EXPECT_TRUE(two.is_local(ip("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(two.is_local(ip("4000::")));
    // IPv4-mapped addresses start with 0x00, which no IPv6 range here covers.
    EXPECT_TRUE(two.is_local(ip("::ffff:64.0.0.1")));
    EXPECT_FALSE(two.is_local(ip("::ffff:128.0.0.1")));
    const LocalDestinations everything(std::span<const Prefix>(wide.data() + 2, 1), false);
    EXPECT_TRUE(everything.is_local(ip("0.0.0.0")));
    EXPECT_TRUE(everything.is_local(ip("203.0.113.1")));
    EXPECT_TRUE(everything.is_local(ip("255.255.255.255")));
    EXPECT_FALSE(everything.is_local(ip("2001:db8::1")));
}

TEST(LocalDestinations, TooManyAttachedSubnetsIsAConfigurationError) {
    std::vector<Prefix> attached;
    for (unsigned i = 0; i <= LocalDestinations::max_attached; ++i) {
        attached.push_back(prefix("198.51." + std::to_string(i) + ".0", 24));
    }
    EXPECT_THROW(LocalDestinations{attached}, std::length_error);
    attached.pop_back();
    EXPECT_NO_THROW(LocalDestinations{attached});
}

TEST(LocalDestinations, AttachedSubnetsComeFromPortsAndTunnelAddresses) {
    const std::string key = crypto::to_base64(crypto::generate_private_key().span());
    const std::string text = "interface:\n  private_key: " + key +
                             "\n  addresses: [10.100.0.1/24, fd00:100::1/64]\n"
                             "ports:\n"
                             "  - name: wan\n    device: net_null0\n"
                             "    address: 198.51.100.1/24\n    address6: 2001:db8:1::1/64\n"
                             "  - name: up\n    device: net_null1\n    role: uplink\n"
                             "    address: 203.0.113.1/28\n";
    auto result = config::load_string(text, "gw.yaml");
    ASSERT_TRUE(std::holds_alternative<config::Config>(result))
        << std::get<config::LoadError>(result).message;
    const std::vector<Prefix> subnets = attached_subnets(std::get<config::Config>(result));
    const std::vector<Prefix> expected = {prefix("198.51.100.0", 24), prefix("2001:db8:1::", 64),
                                          prefix("203.0.113.0", 28), prefix("10.100.0.0", 24),
                                          prefix("fd00:100::", 64)};
    EXPECT_EQ(subnets, expected);
    const LocalDestinations local(subnets);
    EXPECT_TRUE(local.is_local(ip("203.0.113.15")));
    EXPECT_FALSE(local.is_local(ip("203.0.113.16")));
}

struct Case {
    std::uint8_t permissions;
    Destination where;
    const char* destination;
    ExitVerdict verdict;
};

TEST(ExitVerdict, FollowsThePermissionsTable) {
    const std::vector<Prefix> attached = {prefix("203.0.113.1", 24)};
    const LocalDestinations local(attached);
    constexpr std::uint8_t none = 0;
    constexpr std::uint8_t exit = permission_exit;
    constexpr std::uint8_t lan = permission_lan;
    constexpr std::uint8_t peers = permission_peers;
    const std::vector<Case> table = {
        // The gateway itself answers everyone (ping on its tunnel address).
        {none, Destination::gateway, "10.100.0.1", ExitVerdict::allowed},
        // Another peer: route()'s `peers` check decides, whatever else the peer holds.
        {none, Destination::peer, "10.100.0.3", ExitVerdict::peer_check},
        {exit | lan, Destination::peer, "10.100.0.3", ExitVerdict::peer_check},
        // The uplink needs `exit`, for public and local destinations alike.
        {none, Destination::uplink, "8.8.8.8", ExitVerdict::refused_no_exit},
        {peers, Destination::uplink, "8.8.8.8", ExitVerdict::refused_no_exit},
        {lan, Destination::uplink, "192.168.1.1", ExitVerdict::refused_no_exit},
        {lan | peers, Destination::uplink, "2001:db8::1", ExitVerdict::refused_no_exit},
        {exit, Destination::uplink, "8.8.8.8", ExitVerdict::allowed},
        {exit, Destination::uplink, "2606:4700::1111", ExitVerdict::allowed},
        // Local destinations need `lan` as well ("guest wifi").
        {exit, Destination::uplink, "192.168.1.1", ExitVerdict::refused_local_needs_lan},
        {exit, Destination::uplink, "169.254.169.254", ExitVerdict::refused_local_needs_lan},
        {exit | peers, Destination::uplink, "203.0.113.50", ExitVerdict::refused_local_needs_lan},
        {exit, Destination::uplink, "fd00::1", ExitVerdict::refused_local_needs_lan},
        {exit, Destination::uplink, "::ffff:10.0.0.1", ExitVerdict::refused_local_needs_lan},
        {exit | lan, Destination::uplink, "192.168.1.1", ExitVerdict::allowed},
        {exit | lan, Destination::uplink, "203.0.113.50", ExitVerdict::allowed},
        {exit | lan, Destination::uplink, "8.8.8.8", ExitVerdict::allowed},
    };
    for (const Case& row : table) {
        EXPECT_EQ(exit_verdict(row.permissions, row.where, ip(row.destination), local), row.verdict)
            << "permissions " << int(row.permissions) << " to " << row.destination;
    }
}

TEST(ExitCounters, CountRefusalsByReason) {
    ExitCounters counters;
    counters.count(ExitVerdict::refused_no_exit);
    counters.count(ExitVerdict::refused_no_exit);
    counters.count(ExitVerdict::refused_local_needs_lan);
    counters.count(ExitVerdict::allowed);
    counters.count(ExitVerdict::peer_check);
    EXPECT_EQ(counters.refused_no_exit, 2u);
    EXPECT_EQ(counters.refused_local_needs_lan, 1u);
    EXPECT_EQ(counters.packets_out + counters.bytes_out + counters.packets_in + counters.bytes_in,
              0u);
    EXPECT_EQ(alignof(ExitCounters), 64u);
}

}  // namespace
}  // namespace meshgate::dataplane
