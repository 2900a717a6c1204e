// FragmentMap: a first fragment's outcome is found by its datagram's later fragments for its
// lifetime and no longer; another datagram (any field of the key) finds nothing; a newer
// datagram takes a taken slot and is counted.
#include "dataplane/fragment_map.hpp"

#include <gtest/gtest.h>

#include "tests/support/fragment_keys.hpp"

namespace meshgate::dataplane {
namespace {

using test::datagram_key;

TEST(FragmentMap, FoundForItsLifetime) {
    FragmentMap map(64, 10);
    EXPECT_FALSE(map.find(datagram_key(1), 0));
    map.remember(datagram_key(1), 42, 100);
    EXPECT_EQ(map.find(datagram_key(1), 100), 42u);
    EXPECT_EQ(map.find(datagram_key(1), 109), 42u);
    EXPECT_FALSE(map.find(datagram_key(1), 110)) << "lived its 10 ticks";
    map.remember(datagram_key(1), 43, 200);
    EXPECT_EQ(map.find(datagram_key(1), 205), 43u) << "a new first fragment starts over";
}

TEST(FragmentMap, EveryFieldOfTheKeyCounts) {
    FragmentMap map(64, 10);
    map.remember(datagram_key(1), 7, 0);
    FragmentKey other = datagram_key(1);
    other.identification = 2;
    EXPECT_FALSE(map.find(other, 1));
    other = datagram_key(1);
    other.direction = FragmentDirection::from_uplink;
    EXPECT_FALSE(map.find(other, 1));
    other = datagram_key(1);
    other.protocol = 6;
    EXPECT_FALSE(map.find(other, 1));
    other = datagram_key(1);
    other.source[3] = 8;
    EXPECT_FALSE(map.find(other, 1));
    other = datagram_key(1);
    other.destination[15] = 1;
    EXPECT_FALSE(map.find(other, 1));
    other = datagram_key(1);
    other.version = 6;
    EXPECT_FALSE(map.find(other, 1));
    EXPECT_EQ(map.find(datagram_key(1), 1), 7u);
}

// One slot: every new datagram takes it. Displacing a live entry is counted; an expired one,
// or the same datagram again, is not.
TEST(FragmentMap, ANewerDatagramTakesTheSlot) {
    FragmentMap map(1, 10);
    EXPECT_EQ(map.capacity(), 1u);
    map.remember(datagram_key(1), 1, 0);
    map.remember(datagram_key(1), 1, 1);
    EXPECT_EQ(map.displaced(), 0u);
    map.remember(datagram_key(2), 2, 2);
    EXPECT_EQ(map.displaced(), 1u);
    EXPECT_FALSE(map.find(datagram_key(1), 3));
    EXPECT_EQ(map.find(datagram_key(2), 3), 2u);
    map.remember(datagram_key(3), 3, 50);
    EXPECT_EQ(map.displaced(), 1u) << "key 2 had expired";
}

TEST(FragmentMap, CapacityIsAPowerOfTwo) {
    EXPECT_EQ(FragmentMap(1000, 1).capacity(), 1024u);
    EXPECT_EQ(FragmentMap(0, 1).capacity(), 1u);
}

}  // namespace
}  // namespace meshgate::dataplane
