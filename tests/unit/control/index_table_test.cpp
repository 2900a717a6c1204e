// Receiver indexes: the layout's bit fields, sizing for a gateway, and the allocator's rules
// (owner bits kept, one live index per slot, released slots reused, a full table refused).
#include "control/index_table.hpp"

#include <gtest/gtest.h>

#include <set>

namespace meshgate::control {
namespace {

TEST(IndexLayout, FieldsRoundTrip) {
    const IndexLayout layout{.owner_bits = 2, .slot_bits = 10};
    const std::uint32_t index = layout.compose(0xABC00000u, 3, 0x2F1);
    EXPECT_EQ(layout.owner_of(index), 3u);
    EXPECT_EQ(layout.slot_of(index), 0x2F1u);
    EXPECT_EQ(index >> 12, 0xABC00u) << "high bits come from the random word";
    EXPECT_EQ(layout.owner_of(0xABCD0003), 3u);
    EXPECT_EQ(layout.owner_of(0xABCD0004), 0u);
    EXPECT_EQ(IndexLayout{}.owner_of(0xFFFFFFFF), 0u) << "one worker: no owner bits";
    const IndexLayout whole{.owner_bits = 8, .slot_bits = 24};
    EXPECT_EQ(whole.compose(0xFFFFFFFF, 0x12, 0xABCDEF), 0xABCDEF12u);
    EXPECT_EQ(whole.slot_of(0xABCDEF12), 0xABCDEFu) << "owner and slot fill all 32 bits";
    EXPECT_EQ(whole.slot_decoder().slot_of(0xABCDEF12), 0xABCDEFu);
}

TEST(IndexLayout, SizedForHalfLoad) {
    // 100,000 peers hold up to 400,000 indexes: 2^20 slots keeps them under half.
    auto large = IndexLayout::for_peers(1, 100'000);
    ASSERT_TRUE(large);
    EXPECT_EQ(large->owner_bits, 0u);
    EXPECT_EQ(large->slot_bits, 20u);
    auto small = IndexLayout::for_peers(3, 2);
    ASSERT_TRUE(small);
    EXPECT_EQ(small->owner_bits, 2u);
    EXPECT_EQ(small->slot_bits, 11u) << "at least 2,048 slots";
    EXPECT_FALSE(IndexLayout::for_peers(2, 10'000'000)) << "more than 2^24 slots";
    EXPECT_FALSE(IndexLayout::for_peers(1024, 10)) << "more than 2^8 workers";
}

TEST(IndexTable, AllocatedIndexesKeepTheOwnerBits) {
    IndexTable table({.owner_bits = 2, .slot_bits = 10});
    for (PeerId peer = 1; peer <= 300; ++peer) {
        const auto index = table.allocate(peer, peer % 4);
        ASSERT_TRUE(index);
        EXPECT_NE(*index, 0u);
        EXPECT_EQ(table.layout().owner_of(*index), peer % 4);
        ASSERT_NE(table.find(*index), nullptr);
        EXPECT_EQ(*table.find(*index), peer);
    }
    EXPECT_EQ(table.size(), 300u);
}

TEST(IndexTable, LiveIndexesNeverShareASlot) {
    const IndexLayout layout{.owner_bits = 1, .slot_bits = 9};
    IndexTable table(layout);
    std::set<std::uint32_t> slots;
    for (PeerId peer = 0; peer < layout.slot_count(); ++peer) {
        const auto index = table.allocate(peer, 1);
        ASSERT_TRUE(index) << peer;
        EXPECT_TRUE(slots.insert(layout.slot_of(*index)).second) << "slot reused while live";
    }
    EXPECT_EQ(table.size(), layout.slot_count()) << "every slot can be filled";
}

TEST(IndexTable, SlotsAreRandomNotSequential) {
    const IndexLayout layout{.owner_bits = 0, .slot_bits = 16};
    IndexTable table(layout);
    unsigned consecutive = 0;
    std::uint32_t previous = layout.slot_of(*table.allocate(1, 0));
    for (PeerId peer = 2; peer < 64; ++peer) {
        const std::uint32_t slot = layout.slot_of(*table.allocate(peer, 0));
        consecutive += slot == previous + 1 ? 1 : 0;
        previous = slot;
    }
    EXPECT_LT(consecutive, 4u);
}

TEST(IndexTable, FullTableRefusesAndReleasedSlotsReturn) {
    const IndexLayout layout{.owner_bits = 1, .slot_bits = 4};
    IndexTable table(layout);
    std::vector<std::uint32_t> live;
    for (PeerId peer = 0; peer < 16; ++peer) {
        live.push_back(*table.allocate(peer, 1));
    }
    EXPECT_FALSE(table.allocate(99, 1)) << "full: refused, not an endless draw";
    table.release(live[5]);
    EXPECT_EQ(table.find(live[5]), nullptr);
    const auto again = table.allocate(99, 1);
    ASSERT_TRUE(again) << "the released slot is free again";
    EXPECT_EQ(layout.slot_of(*again), layout.slot_of(live[5]));
    EXPECT_EQ(*table.find(*again), 99u);
    EXPECT_FALSE(table.allocate(100, 1));
}

TEST(IndexTable, StaleReleaseLeavesTheSlotsNewHolder) {
    const IndexLayout layout{.owner_bits = 0, .slot_bits = 4};
    IndexTable table(layout);
    const std::uint32_t index = *table.allocate(7, 0);
    const std::uint32_t stale = index ^ 0x80000000u;  // same slot, other high bits
    table.release(stale);
    table.release(0);
    EXPECT_EQ(table.find(stale), nullptr);
    ASSERT_NE(table.find(index), nullptr);
    EXPECT_EQ(table.size(), 1u);
    table.release(index);
    EXPECT_EQ(table.size(), 0u);
}

}  // namespace
}  // namespace meshgate::control
