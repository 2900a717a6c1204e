// Session table and peer slots: publish, look up in bulk, retire; the slot an
// index names holds only that index; the endpoint seqlock round-trips.
#include "dataplane/tables.hpp"

#include <gtest/gtest.h>

#include "dataplane/burst.hpp"
#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

// 256 slots, one owner bit: small enough to fill, and the owner bits are skipped over.
constexpr control::IndexLayout layout{.owner_bits = 1, .slot_bits = 8};

// An index in `slot`, its high bits from `high`.
std::uint32_t index_in(std::uint32_t slot, std::uint32_t high, unsigned owner = 1) {
    return layout.compose(high << 9, owner, slot);
}

std::unique_ptr<Keypair> keypair(std::uint32_t index, PeerId peer) {
    auto made = std::make_unique<Keypair>();
    made->local_index = index;
    made->peer = peer;
    made->receive_key.fill(static_cast<std::uint8_t>(index));
    return made;
}

Keypair* look_up_one(const SessionTable& table, std::uint32_t index) {
    Keypair* found = nullptr;
    table.lookup(&index, &found, 1);
    return found;
}

TEST(SessionTable, PublishLookupRetire) {
    SessionTable table("sessions_basic", layout, nullptr);
    for (std::uint32_t slot = 0; slot < 100; ++slot) {
        ASSERT_TRUE(table.publish(keypair(index_in(slot, slot + 7), slot)));
    }
    EXPECT_EQ(table.size(), 100u);
    EXPECT_FALSE(table.publish(keypair(index_in(5, 12), 55))) << "the same index twice";
    EXPECT_FALSE(table.publish(keypair(index_in(5, 999), 55))) << "another index, same slot";
    EXPECT_FALSE(table.publish(keypair(0, 55))) << "zero is never an index";
    EXPECT_EQ(table.size(), 100u);
    EXPECT_TRUE(table.slot_taken(index_in(5, 999)));
    EXPECT_FALSE(table.slot_taken(index_in(100, 7)));

    for (std::uint32_t slot = 0; slot < 100; ++slot) {
        Keypair* found = look_up_one(table, index_in(slot, slot + 7));
        ASSERT_NE(found, nullptr) << slot;
        EXPECT_EQ(found->peer, slot);
    }

    table.retire(index_in(7, 14));
    table.retire(index_in(8, 1));      // right slot, other high bits: not this slot's index
    table.retire(index_in(200, 207));  // an empty slot
    EXPECT_EQ(table.size(), 99u);
    EXPECT_EQ(look_up_one(table, index_in(7, 14)), nullptr);
    EXPECT_FALSE(table.slot_taken(index_in(7, 14)));
    ASSERT_NE(look_up_one(table, index_in(8, 15)), nullptr) << "a stale retire left it alone";
}

TEST(SessionTable, SameSlotOtherHighBitsMisses) {
    SessionTable table("sessions_high", layout, nullptr);
    const std::uint32_t index = index_in(42, 0x5A5A);
    ASSERT_TRUE(table.publish(keypair(index, 1)));
    EXPECT_NE(look_up_one(table, index), nullptr);
    EXPECT_EQ(look_up_one(table, index_in(42, 0x5A5B)), nullptr);
    EXPECT_EQ(look_up_one(table, index_in(42, 0x5A5A, 0)), nullptr) << "other owner bit";
    EXPECT_EQ(look_up_one(table, index ^ 0x80000000u), nullptr);
}

TEST(SessionTable, RetiredSlotTakesANewIndex) {
    SessionTable table("sessions_reuse", layout, nullptr);
    const std::uint32_t old_index = index_in(9, 1);
    const std::uint32_t new_index = index_in(9, 2);
    ASSERT_TRUE(table.publish(keypair(old_index, 1)));
    table.retire(old_index);
    ASSERT_TRUE(table.publish(keypair(new_index, 2)));
    EXPECT_EQ(look_up_one(table, old_index), nullptr) << "packets for the old index miss";
    Keypair* found = look_up_one(table, new_index);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->peer, 2u);
    EXPECT_EQ(table.size(), 1u);
}

TEST(SessionTable, BurstMixesHitsAndMisses) {
    SessionTable table("sessions_burst", layout, nullptr);
    for (std::uint32_t slot = 0; slot < 256; slot += 2) {
        ASSERT_TRUE(table.publish(keypair(index_in(slot, slot * 3 + 1), slot)));
    }
    // Per packet: a hit, an empty slot, a taken slot under another index, or zero.
    std::uint32_t indexes[burst_size];
    for (std::uint32_t i = 0; i < burst_size; ++i) {
        const std::uint32_t slot = (i * 37) % 128 * 2;
        switch (i % 4) {
            case 0:
                indexes[i] = index_in(slot, slot * 3 + 1);
                break;
            case 1:
                indexes[i] = index_in(slot + 1, slot * 3 + 1);
                break;
            case 2:
                indexes[i] = index_in(slot, slot * 3 + 2);
                break;
            default:
                indexes[i] = 0;
                break;
        }
    }
    Keypair* found[burst_size];
    table.lookup(indexes, found, burst_size);
    for (std::uint32_t i = 0; i < burst_size; ++i) {
        if (i % 4 == 0) {
            ASSERT_NE(found[i], nullptr) << i;
            EXPECT_EQ(found[i]->local_index, indexes[i]);
        } else {
            EXPECT_EQ(found[i], nullptr) << i;
        }
    }
}

TEST(SessionTable, EverySlotCanBeFilled) {
    SessionTable table("sessions_full", layout, nullptr);
    for (std::uint32_t slot = 0; slot < layout.slot_count(); ++slot) {
        ASSERT_TRUE(table.publish(keypair(index_in(slot, 3), slot)));
    }
    EXPECT_EQ(table.size(), layout.slot_count());
    for (std::uint32_t slot = 0; slot < layout.slot_count(); ++slot) {
        ASSERT_NE(look_up_one(table, index_in(slot, 3)), nullptr);
    }
    // The destructor frees the 256 keypairs still published (ASan build: no leak).
}

TEST(PeerSlot, EndpointRoundTrips) {
    PeerSlot slot;
    EXPECT_FALSE(slot.read_endpoint().known);
    EndpointRecord record;
    record.endpoint.port = 51820;
    record.endpoint.address.bytes[0] = 198;
    record.known = true;
    slot.write_endpoint(record, OuterTemplate{});
    EndpointRecord read = slot.read_endpoint();
    EXPECT_TRUE(read.known);
    EXPECT_EQ(read.endpoint, record.endpoint);
}

// The layout decap and encap are priced by: decap's key and every scalar it reads or writes
// in one line, then one word of the replay bitmap; encap's key and scalars in one line.
TEST(KeypairLayout, EachDirectionTouchesOneLine) {
    auto keypair = std::make_unique<Keypair>();
    auto line_of = [&](const void* address) {
        return (reinterpret_cast<std::uintptr_t>(address) -
                reinterpret_cast<std::uintptr_t>(keypair.get())) /
               64;
    };
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(keypair.get()) % 64, 0u);
    for (const void* decap :
         {static_cast<const void*>(keypair->receive_key.data()),
          static_cast<const void*>(keypair->receive_key.data() + 31),
          static_cast<const void*>(&keypair->reject_after_tsc),
          static_cast<const void*>(&keypair->peer),
          static_cast<const void*>(&keypair->received_data), keypair->replay.scalars_first_byte(),
          keypair->replay.scalars_last_byte()}) {
        EXPECT_EQ(line_of(decap), 0u);
    }
    EXPECT_GE(line_of(keypair->replay.word_address(0)), 1u);
    const auto encap_line = line_of(keypair->send_key.data());
    EXPECT_GT(encap_line, line_of(keypair->replay.word_address(8191)));
    for (const void* encap : {static_cast<const void*>(keypair->send_key.data() + 31),
                              static_cast<const void*>(&keypair->send_reject_after_tsc),
                              static_cast<const void*>(&keypair->remote_index),
                              static_cast<const void*>(&keypair->send_counter)}) {
        EXPECT_EQ(line_of(encap), encap_line);
    }
}

TEST(KeypairLayout, ExpiryIsSetForBothDirections) {
    Keypair keypair;
    keypair.expire_at(12345);
    EXPECT_EQ(keypair.reject_after_tsc, 12345u);
    EXPECT_EQ(keypair.send_reject_after_tsc, 12345u);
}

// A packet's peer costs decap and route two lines and encap three: what all of them read
// (keypair pointers, owner, permissions, endpoint) in the first, the outer headers encap
// copies in the second, the counters decap and encap write in the third.
TEST(PeerSlotLayout, ReadLineThenHeadersThenCounters) {
    auto slot = std::make_unique<PeerSlot>();
    auto line_of = [&](const void* address, std::size_t size) {
        const auto start = reinterpret_cast<std::uintptr_t>(address) -
                           reinterpret_cast<std::uintptr_t>(slot.get());
        EXPECT_EQ(start / 64, (start + size - 1) / 64) << "a field straddles two lines";
        return start / 64;
    };
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(slot.get()) % 64, 0u);
    EXPECT_EQ(line_of(&slot->current, sizeof(slot->current)), 0u);
    EXPECT_EQ(line_of(&slot->next, sizeof(slot->next)), 0u);
    EXPECT_EQ(line_of(&slot->owner, sizeof(slot->owner)), 0u);
    EXPECT_EQ(line_of(&slot->permissions, sizeof(slot->permissions)), 0u);
    EXPECT_EQ(line_of(&slot->endpoint_lock, sizeof(slot->endpoint_lock)), 0u);
    EXPECT_EQ(line_of(&slot->endpoint, sizeof(slot->endpoint)), 0u);
    EXPECT_EQ(line_of(&slot->host_ipv4, sizeof(slot->host_ipv4)), 0u);
    EXPECT_EQ(line_of(&slot->outer, sizeof(slot->outer)), 1u);
    EXPECT_EQ(line_of(&slot->counters, sizeof(slot->counters)), 2u);
}

// Decap skips the allowed-IPs lookup for a source equal to the sender's recorded /32, so a
// peer may only have recorded an IPv4 /32 the table resolves to it: not a wider prefix, not
// an IPv6 one, not a /32 a later change gave to another peer.
TEST(HostAddresses, OnlyIpv4HostRoutesTheTableResolvesToThePeer) {
    AllowedIps table("t_hosts", nullptr);
    auto peers = std::make_unique<PeerSlot[]>(4);
    auto v4 = [](std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        const std::uint8_t bytes[4] = {a, b, c, d};
        std::uint32_t value;
        std::memcpy(&value, bytes, 4);
        return IpAddress::v4(value);
    };
    std::uint8_t v6_bytes[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    const std::vector<AllowedIpChange> routes = {
        {{v4(10, 1, 0, 0), 24}, 0},           // peer 0: a /24 only
        {{IpAddress::v6(v6_bytes), 128}, 1},  // peer 1: IPv6 first, then its /32
        {{v4(10, 2, 0, 1), 32}, 1},
        {{v4(10, 2, 0, 9), 32}, 1},  // a second /32: the first one is recorded
        {{v4(10, 3, 0, 1), 32}, 2},  // given to peer 2, then to peer 3
        {{v4(10, 3, 0, 1), 32}, 3},
    };
    ASSERT_TRUE(table.apply(routes));
    record_host_addresses(peers.get(), table, routes);
    EXPECT_EQ(peers[0].host_ipv4.load(), 0u);
    EXPECT_EQ(peers[1].host_ipv4.load(), v4(10, 2, 0, 1).v4_network_order());
    EXPECT_EQ(peers[2].host_ipv4.load(), 0u);
    EXPECT_EQ(peers[3].host_ipv4.load(), v4(10, 3, 0, 1).v4_network_order());
}

}  // namespace
}  // namespace meshgate::dataplane
