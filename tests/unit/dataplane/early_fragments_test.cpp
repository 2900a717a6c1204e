// EarlyFragments: held fragments come out for their own datagram only, in arrival order; the
// oldest makes room when all slots are taken; what outlives its time is handed back; nothing
// held is leaked.
#include "dataplane/early_fragments.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "tests/support/eal_environment.hpp"
#include "tests/support/fragment_keys.hpp"

namespace meshgate::dataplane {
namespace {

using test::datagram_key;

rte_mbuf* packet() {
    rte_mbuf* packet = test::make_packet(std::vector<std::uint8_t>(60, 0));
    EXPECT_NE(packet, nullptr);
    return packet;
}

unsigned available() {
    return rte_mempool_avail_count(test::EalEnvironment::pool());
}

TEST(EarlyFragments, ReleasedForTheirDatagramInArrivalOrder) {
    EarlyFragments early(100);
    rte_mbuf* a1 = packet();
    rte_mbuf* b1 = packet();
    rte_mbuf* a2 = packet();
    EXPECT_EQ(early.hold(a1, datagram_key(1), 0), nullptr);
    EXPECT_EQ(early.hold(b1, datagram_key(2), 1), nullptr);
    EXPECT_EQ(early.hold(a2, datagram_key(1), 2), nullptr);
    rte_mbuf* out[EarlyFragments::capacity];
    EXPECT_EQ(early.release(datagram_key(3), out, EarlyFragments::capacity), 0u);
    ASSERT_EQ(early.release(datagram_key(1), out, EarlyFragments::capacity), 2u);
    EXPECT_EQ(out[0], a1);
    EXPECT_EQ(out[1], a2);
    EXPECT_EQ(early.held(), 1u);
    EXPECT_EQ(early.release(datagram_key(1), out, EarlyFragments::capacity), 0u) << "released once";
    ASSERT_EQ(early.release(datagram_key(2), out, 1), 1u);
    EXPECT_EQ(out[0], b1);
    EXPECT_EQ(early.held(), 0u);
    rte_pktmbuf_free(a1);
    rte_pktmbuf_free(a2);
    rte_pktmbuf_free(b1);
}

TEST(EarlyFragments, TheOldestMakesRoomWhenFull) {
    EarlyFragments early(100);
    std::vector<rte_mbuf*> held;
    for (unsigned i = 0; i < EarlyFragments::capacity; ++i) {
        held.push_back(packet());
        EXPECT_EQ(early.hold(held.back(), datagram_key(i), i), nullptr);
    }
    rte_mbuf* newest = packet();
    EXPECT_EQ(early.hold(newest, datagram_key(99), 50), held[0]) << "the oldest is handed back";
    EXPECT_EQ(early.held(), EarlyFragments::capacity);
    rte_mbuf* out[EarlyFragments::capacity];
    EXPECT_EQ(early.release(datagram_key(0), out, EarlyFragments::capacity), 0u);
    ASSERT_EQ(early.release(datagram_key(99), out, EarlyFragments::capacity), 1u);
    EXPECT_EQ(out[0], newest);
    ASSERT_EQ(early.release(datagram_key(1), out, EarlyFragments::capacity), 1u);
    EXPECT_EQ(out[0], held[1]);
    rte_pktmbuf_free(newest);
    for (unsigned i = 2; i < EarlyFragments::capacity; ++i) {
        ASSERT_EQ(early.release(datagram_key(i), out, EarlyFragments::capacity), 1u) << i;
        EXPECT_EQ(out[0], held[i]);
    }
    for (rte_mbuf* packet : held) {
        rte_pktmbuf_free(packet);
    }
    EXPECT_EQ(early.held(), 0u);
}

TEST(EarlyFragments, WhatOutlivesItsTimeIsHandedBack) {
    EarlyFragments early(10);
    rte_mbuf* old = packet();
    rte_mbuf* young = packet();
    early.hold(old, datagram_key(1), 100);
    early.hold(young, datagram_key(2), 105);
    rte_mbuf* out[EarlyFragments::capacity];
    EXPECT_EQ(early.expire(109, out, EarlyFragments::capacity), 0u);
    ASSERT_EQ(early.expire(110, out, EarlyFragments::capacity), 1u) << "held its 10 ticks";
    EXPECT_EQ(out[0], old);
    EXPECT_EQ(early.held(), 1u);
    ASSERT_EQ(early.expire(200, out, EarlyFragments::capacity), 1u);
    EXPECT_EQ(out[0], young);
    rte_pktmbuf_free(old);
    rte_pktmbuf_free(young);
}

TEST(EarlyFragments, WhatIsStillHeldIsFreedWithIt) {
    const unsigned before = available();
    {
        EarlyFragments early(10);
        early.hold(packet(), datagram_key(1), 0);
        early.hold(packet(), datagram_key(2), 0);
        EXPECT_EQ(available(), before - 2);
    }
    EXPECT_EQ(available(), before);
}

}  // namespace
}  // namespace meshgate::dataplane
