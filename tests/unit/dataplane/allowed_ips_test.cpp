// Allowed IPs against a deliberately naive reference (longest match by linear scan), as the
// kernel tests its trie; plus canonical prefixes and all-or-nothing batches.
#include "dataplane/allowed_ips.hpp"

#include <gtest/gtest.h>

#include <random>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress address;
    address.bytes[0] = a, address.bytes[1] = b, address.bytes[2] = c, address.bytes[3] = d;
    return address;
}

IpAddress v6(std::initializer_list<std::uint8_t> leading) {
    IpAddress address;
    address.is_v6 = true;
    std::copy(leading.begin(), leading.end(), address.bytes.begin());
    return address;
}

bool contains(const Prefix& prefix, const IpAddress& address) {
    if (prefix.address.is_v6 != address.is_v6) {
        return false;
    }
    Prefix masked = canonical({address, prefix.length});
    return masked.address == prefix.address;
}

// The reference: every prefix in a list, longest match by scanning all of them.
struct NaiveTable {
    std::map<Prefix, PeerId> routes;
    PeerId lookup(const IpAddress& address) const {
        PeerId best = no_peer;
        int best_length = -1;
        for (const auto& [prefix, peer] : routes) {
            if (contains(prefix, address) && prefix.length > best_length) {
                best = peer;
                best_length = prefix.length;
            }
        }
        return best;
    }
};

TEST(Canonical, ZeroesHostBits) {
    EXPECT_EQ(canonical({v4(10, 1, 2, 3), 24}).address, v4(10, 1, 2, 0));
    EXPECT_EQ(canonical({v4(10, 1, 2, 3), 23}).address, v4(10, 1, 2, 0));
    EXPECT_EQ(canonical({v4(10, 1, 3, 3), 23}).address, v4(10, 1, 2, 0));
    EXPECT_EQ(canonical({v4(10, 1, 2, 3), 0}).address, v4(0, 0, 0, 0));
    EXPECT_EQ(canonical({v4(10, 1, 2, 3), 32}).address, v4(10, 1, 2, 3));
    EXPECT_EQ(canonical({v6({0xfd, 0x00, 0x12, 0x34, 0xff}), 20}).address, v6({0xfd, 0x00, 0x10}));
}

TEST(AllowedIps, LongestMatchWinsAndRemovalFallsBack) {
    AllowedIps table("t_basic", nullptr);
    ASSERT_TRUE(table.apply(std::vector<AllowedIpChange>{
        {{v4(10, 0, 0, 0), 8}, 1},
        {{v4(10, 100, 0, 0), 24}, 2},
        {{v4(10, 100, 0, 7), 32}, 3},
        {{v6({0xfd, 0}), 8}, 4},
        {{v6({0xfd, 0, 0x01, 0x00}), 32}, 5},
    }));
    EXPECT_EQ(table.lookup(v4(10, 9, 9, 9)), 1u);
    EXPECT_EQ(table.lookup(v4(10, 100, 0, 9)), 2u);
    EXPECT_EQ(table.lookup(v4(10, 100, 0, 7)), 3u);
    EXPECT_EQ(table.lookup(v4(11, 0, 0, 1)), no_peer);
    EXPECT_EQ(table.lookup(v6({0xfd, 0x55})), 4u);
    EXPECT_EQ(table.lookup(v6({0xfd, 0, 0x01, 0x00, 0x99})), 5u);
    EXPECT_EQ(table.lookup(v6({0xfe, 0x80})), no_peer);

    ASSERT_TRUE(table.remove_peer(3));
    EXPECT_EQ(table.lookup(v4(10, 100, 0, 7)), 2u);
    EXPECT_EQ(table.prefixes_of(5).size(), 1u);
    EXPECT_EQ(table.size(), 4u);
}

TEST(AllowedIps, HostBitsInAChangeAreIgnored) {
    AllowedIps table("t_host_bits", nullptr);
    ASSERT_TRUE(table.apply(std::vector<AllowedIpChange>{{{v4(10, 1, 2, 3), 24}, 7}}));
    EXPECT_EQ(table.lookup(v4(10, 1, 2, 200)), 7u);
    EXPECT_EQ(table.prefixes_of(7).front().address, v4(10, 1, 2, 0));
}

TEST(AllowedIps, MatchesNaiveReferenceOverRandomChurn) {
    AllowedIps table("t_random", nullptr);
    NaiveTable reference;
    std::mt19937_64 rng(2024);
    auto random_v4 = [&] {
        // Concentrated in 10.0.0.0/14 so prefixes overlap and nest often.
        std::uint32_t value = 0x0A000000u | static_cast<std::uint32_t>(rng() & 0x3FFFF);
        return v4(static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
                  static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value));
    };
    auto random_v6 = [&] {
        return v6({0xfd, 0, static_cast<std::uint8_t>(rng() & 3), static_cast<std::uint8_t>(rng()),
                   static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng())});
    };
    for (int round = 0; round < 40; ++round) {
        std::vector<AllowedIpChange> changes;
        for (int i = 0; i < 50; ++i) {
            bool six = rng() % 3 == 0;
            Prefix prefix = six ? Prefix{random_v6(), static_cast<std::uint8_t>(8 + rng() % 121)}
                                : Prefix{random_v4(), static_cast<std::uint8_t>(8 + rng() % 25)};
            prefix = canonical(prefix);
            PeerId peer = rng() % 4 == 0 ? no_peer : static_cast<PeerId>(rng() % 1000);
            changes.push_back({prefix, peer});
        }
        ASSERT_TRUE(table.apply(changes));
        for (const auto& change : changes) {
            if (change.peer == no_peer) {
                reference.routes.erase(change.prefix);
            } else {
                reference.routes[change.prefix] = change.peer;
            }
        }
        IpAddress probes[100];
        PeerId bulk[100];
        for (int probe = 0; probe < 100; ++probe) {
            probes[probe] = probe % 3 == 0 ? random_v6() : random_v4();
            ASSERT_EQ(table.lookup(probes[probe]), reference.lookup(probes[probe]))
                << "round " << round;
        }
        // The mixed-family bulk form agrees with the single lookups.
        table.lookup_burst(probes, bulk, 100);
        for (int probe = 0; probe < 100; ++probe) {
            ASSERT_EQ(bulk[probe], reference.lookup(probes[probe])) << "bulk, round " << round;
        }
        // So does an all-IPv4 burst, which the bulk form looks up without scattering.
        for (int probe = 0; probe < 100; ++probe) {
            probes[probe] = random_v4();
        }
        table.lookup_burst(probes, bulk, 100);
        for (int probe = 0; probe < 100; ++probe) {
            ASSERT_EQ(bulk[probe], reference.lookup(probes[probe])) << "v4 bulk, round " << round;
        }
    }
    EXPECT_EQ(table.size(), reference.routes.size());
}

TEST(AllowedIps, BulkLookupMatchesSingleLookups) {
    AllowedIps table("t_bulk", nullptr);
    std::vector<AllowedIpChange> changes;
    for (std::uint8_t i = 0; i < 100; ++i) {
        changes.push_back({{v4(10, 100, i, 0), 24}, i});
    }
    ASSERT_TRUE(table.apply(changes));
    std::uint32_t addresses[100];
    PeerId peers[100];
    for (std::uint32_t i = 0; i < 100; ++i) {
        addresses[i] = (10u << 24) | (100u << 16) | ((i * 3) % 256) << 8 | 5;
    }
    table.lookup_v4(addresses, peers, 100);
    for (std::uint32_t i = 0; i < 100; ++i) {
        std::uint32_t third = (i * 3) % 256;
        EXPECT_EQ(peers[i], third < 100 ? third : no_peer);
    }
}

}  // namespace
}  // namespace meshgate::dataplane
