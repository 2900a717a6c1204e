// The NAT's flow index: what is inserted is found, what is erased is not, whatever the hashes;
// runs of full buckets (forced here with equal hashes) are searched past and taken back on
// erase; the index refuses only when every slot is taken; the keyed hash depends on its key.
#include "dataplane/flow_index.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

// Entries are plain numbers here; the caller's "is this the flow" is value equality.
std::int32_t find(const FlowIndex& index, std::uint64_t hash, std::uint32_t value) {
    return index.find(hash, [value](std::uint32_t entry) { return entry == value; });
}

// A hash whose home bucket is `bucket` and whose tag is `tag` (see FlowIndex::home_of/tag_of).
std::uint64_t hash_in(std::uint32_t bucket, std::uint16_t tag) {
    return (std::uint64_t{bucket} << 32) | tag;
}

TEST(FlowIndex, FindsWhatWasInsertedAndNotWhatWasErased) {
    FlowIndex index("flow_index_test", 64, SOCKET_ID_ANY);
    ASSERT_TRUE(index.insert(hash_in(3, 0x1234), 7));
    ASSERT_TRUE(index.insert(hash_in(3, 0x1234), 8));  // same hash, another flow
    EXPECT_EQ(find(index, hash_in(3, 0x1234), 7), 7);
    EXPECT_EQ(find(index, hash_in(3, 0x1234), 8), 8);
    EXPECT_EQ(find(index, hash_in(3, 0x1234), 9), -1);
    EXPECT_EQ(find(index, hash_in(4, 0x1234), 7), -1);
    EXPECT_EQ(index.first_candidate(hash_in(3, 0x1234)), 7);
    EXPECT_EQ(index.first_candidate(hash_in(3, 0x4444)), -1);
    index.erase(hash_in(3, 0x1234), 7);
    EXPECT_EQ(find(index, hash_in(3, 0x1234), 7), -1);
    EXPECT_EQ(find(index, hash_in(3, 0x1234), 8), 8);
    index.erase(hash_in(3, 0x1234), 99);  // not there: nothing changes
    EXPECT_EQ(index.size(), 1u);
}

// Forty flows with one home bucket fill it and the four after it. Each is found past the full
// buckets; erasing from the middle of the run keeps the others reachable; once all are gone,
// a flow homed in a bucket the run had filled goes into that bucket.
TEST(FlowIndex, RunsOfFullBucketsAreSearchedAndTakenBack) {
    FlowIndex index("flow_index_test", 64, SOCKET_ID_ANY);  // 16 buckets
    const std::uint64_t crowded = hash_in(5, 0x0101);
    for (std::uint32_t value = 0; value < 40; ++value) {
        ASSERT_TRUE(index.insert(crowded, value));
    }
    for (std::uint32_t value = 0; value < 40; ++value) {
        EXPECT_EQ(find(index, crowded, value), static_cast<std::int32_t>(value));
    }
    for (std::uint32_t value = 0; value < 40; value += 3) {
        index.erase(crowded, value);
    }
    for (std::uint32_t value = 0; value < 40; ++value) {
        EXPECT_EQ(find(index, crowded, value),
                  value % 3 == 0 ? -1 : static_cast<std::int32_t>(value));
    }
    // Freed slots in the run are used again.
    ASSERT_TRUE(index.insert(crowded, 100));
    EXPECT_EQ(find(index, crowded, 100), 100);
    index.erase(crowded, 100);
    for (std::uint32_t value = 0; value < 40; ++value) {
        index.erase(crowded, value);
    }
    EXPECT_EQ(index.size(), 0u);
    // The run's buckets are free again: a flow homed in one of them lands there.
    ASSERT_TRUE(index.insert(hash_in(6, 0x0202), 55));
    EXPECT_EQ(index.first_candidate(hash_in(6, 0x0202)), 55);
}

TEST(FlowIndex, RefusesOnlyWhenEverySlotIsTaken) {
    FlowIndex index("flow_index_test", 8, SOCKET_ID_ANY);  // 2 buckets, 16 slots
    for (std::uint32_t value = 0; value < 16; ++value) {
        ASSERT_TRUE(index.insert(hash_in(value % 2, 0x0F0F), value)) << value;
    }
    EXPECT_FALSE(index.insert(hash_in(0, 0x0F0F), 16));
    for (std::uint32_t value = 0; value < 16; ++value) {
        EXPECT_EQ(find(index, hash_in(value % 2, 0x0F0F), value), static_cast<std::int32_t>(value));
    }
    index.erase(hash_in(1, 0x0F0F), 5);
    EXPECT_TRUE(index.insert(hash_in(0, 0x0F0F), 16));
    EXPECT_EQ(find(index, hash_in(0, 0x0F0F), 16), 16);
}

// Random inserts and erases over a few home buckets and tags (so collisions, runs and wrap-
// around at the last bucket all happen), checked against a map after every step.
TEST(FlowIndex, AgreesWithAReferenceMapUnderRandomChurn) {
    FlowIndex index("flow_index_test", 128, SOCKET_ID_ANY);  // 32 buckets
    std::mt19937 rng(11);
    std::map<std::uint32_t, std::uint64_t> stored;  // value -> hash
    for (int step = 0; step < 20000; ++step) {
        const std::uint32_t value = rng() % 256;
        auto it = stored.find(value);
        if (it != stored.end()) {
            index.erase(it->second, value);
            stored.erase(it);
        } else if (stored.size() < 128) {
            // Homes crowd the last buckets, so runs wrap to bucket 0.
            const std::uint64_t hash =
                hash_in(28 + rng() % 4, static_cast<std::uint16_t>(rng() % 4));
            ASSERT_TRUE(index.insert(hash, value));
            stored[value] = hash;
        }
        ASSERT_EQ(index.size(), stored.size());
        const std::uint32_t probe = rng() % 256;
        auto expected = stored.find(probe);
        const std::uint64_t hash =
            expected != stored.end() ? expected->second : hash_in(28 + rng() % 4, rng() % 4);
        ASSERT_EQ(find(index, hash, probe),
                  expected != stored.end() ? static_cast<std::int32_t>(probe) : -1)
            << "step " << step;
    }
}

TEST(FlowHasher, DependsOnTheKeyAndOnEveryByte) {
    const std::array<std::uint32_t, 10> key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const FlowHasher hasher(key);
    std::array<std::uint8_t, FlowHasher::key_bytes> flow{};
    const std::uint64_t base = hasher(flow.data());
    EXPECT_EQ(FlowHasher(key)(flow.data()), base);
    std::set<std::uint64_t> seen{base};
    for (std::size_t byte = 0; byte < flow.size(); ++byte) {
        flow[byte] ^= 0x80;
        seen.insert(hasher(flow.data()));
        flow[byte] ^= 0x80;
    }
    EXPECT_EQ(seen.size(), flow.size() + 1);
    std::array<std::uint32_t, 10> other = key;
    other[0] ^= 1;
    EXPECT_NE(FlowHasher(other)(flow.data()), base);
    // Two random keys: distinct secrets (a fixed default would let peers aim collisions).
    EXPECT_NE(FlowHasher()(flow.data()), FlowHasher()(flow.data()));
}

}  // namespace
}  // namespace meshgate::dataplane
