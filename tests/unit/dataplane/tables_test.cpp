// Session table and peer slots: publish, look up in bulk, retire (keys wiped), reject
// duplicates; the endpoint seqlock round-trips.
#include "dataplane/tables.hpp"

#include <gtest/gtest.h>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

std::unique_ptr<Keypair> keypair(std::uint32_t index, PeerId peer) {
    auto made = std::make_unique<Keypair>();
    made->local_index = index;
    made->peer = peer;
    made->receive_key.fill(static_cast<std::uint8_t>(index));
    return made;
}

TEST(SessionTable, PublishLookupRetire) {
    SessionTable table("sessions_basic", 1024, nullptr);
    for (std::uint32_t i = 1; i <= 100; ++i) {
        ASSERT_TRUE(table.publish(keypair(i * 7919, i)));
    }
    EXPECT_EQ(table.size(), 100u);
    EXPECT_FALSE(table.publish(keypair(7919, 55))) << "duplicate index must be refused";

    std::uint32_t indexes[100];
    Keypair* found[100];
    for (std::uint32_t i = 0; i < 100; ++i) {
        indexes[i] = (i % 2 == 0) ? (i + 1) * 7919 : 12345 + i;  // every other one unknown
    }
    table.lookup(indexes, found, 100);
    for (std::uint32_t i = 0; i < 100; ++i) {
        if (i % 2 == 0) {
            ASSERT_NE(found[i], nullptr);
            EXPECT_EQ(found[i]->peer, i + 1);
        } else {
            EXPECT_EQ(found[i], nullptr);
        }
    }

    table.retire(7919);
    table.retire(424242);  // unknown: no-op
    EXPECT_EQ(table.size(), 99u);
    std::uint32_t gone = 7919;
    Keypair* none;
    table.lookup(&gone, &none, 1);
    EXPECT_EQ(none, nullptr);
    EXPECT_TRUE(table.publish(keypair(7919, 1))) << "a retired index may be reused";
}

TEST(SessionTable, FullTableRefuses) {
    SessionTable table("sessions_full", 64, nullptr);
    unsigned published = 0;
    for (std::uint32_t i = 0; i < 200; ++i) {
        published += table.publish(keypair(i + 1, i)) ? 1 : 0;
    }
    EXPECT_GE(published, 64u);
    EXPECT_LT(published, 200u);
    EXPECT_EQ(table.size(), published);
}

TEST(PeerSlot, EndpointRoundTrips) {
    PeerSlot slot;
    EXPECT_FALSE(slot.read_endpoint().known);
    EndpointRecord record;
    record.endpoint.port = 51820;
    record.endpoint.address.bytes[0] = 198;
    record.known = true;
    slot.write_endpoint(record);
    EndpointRecord read = slot.read_endpoint();
    EXPECT_TRUE(read.known);
    EXPECT_EQ(read.endpoint, record.endpoint);
}

// The layout decap and encap are priced by: keys in one cache line, every scalar a worker
// reads or writes in the next (including the replay window's), the bitmap after them.
TEST(KeypairLayout, WorkersTouchTwoLinesAndOneBitmapWord) {
    auto keypair = std::make_unique<Keypair>();
    auto line_of = [&](const void* address) {
        return (reinterpret_cast<std::uintptr_t>(address) -
                reinterpret_cast<std::uintptr_t>(keypair.get())) /
               64;
    };
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(keypair.get()) % 64, 0u);
    EXPECT_EQ(line_of(keypair->receive_key.data()), 0u);
    EXPECT_EQ(line_of(keypair->send_key.data() + 31), 0u);
    for (const void* scalar :
         {static_cast<const void*>(&keypair->local_index),
          static_cast<const void*>(&keypair->remote_index),
          static_cast<const void*>(&keypair->peer),
          static_cast<const void*>(&keypair->reject_after_tsc),
          static_cast<const void*>(&keypair->initiator),
          static_cast<const void*>(&keypair->send_counter),
          static_cast<const void*>(&keypair->received_data), keypair->replay.state_address()}) {
        EXPECT_EQ(line_of(scalar), 1u);
    }
    EXPECT_GE(line_of(keypair->replay.word_address(0)), 2u);
}

// A packet's peer costs two lines: what decap, route and encap read (keypair pointers, owner,
// permissions, endpoint) in the first, the counters they write in the second.
TEST(PeerSlotLayout, DataPathReadsOneLineAndWritesTheNext) {
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
    EXPECT_EQ(line_of(&slot->counters, sizeof(slot->counters)), 1u);
}

}  // namespace
}  // namespace meshgate::dataplane
