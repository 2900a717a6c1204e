// Handoff: packets reach their owner in order with their metadata; a full ring drops and
// counts instead of blocking.
#include "dataplane/handoff.hpp"

#include <gtest/gtest.h>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

TEST(Handoff, DeliversToTheOwnerInOrderWithMetadata) {
    ASSERT_TRUE(register_packet_meta());
    Handoff handoff("ho_order", 2, 64);
    WorkerCounters counters;
    rte_mbuf* packets[8];
    for (std::uint32_t i = 0; i < 8; ++i) {
        packets[i] = test::make_packet({static_cast<std::uint8_t>(i)});
        packet_meta(packets[i]) = {i * 10, i % 2 ? HandoffStage::encap : HandoffStage::decap};
    }
    EXPECT_EQ(handoff.send(1, packets, 8, counters), 8u);
    EXPECT_EQ(counters.handed_off, 8u);

    rte_mbuf* received[32];
    EXPECT_EQ(handoff.receive(0, received, 32), 0u);
    ASSERT_EQ(handoff.receive(1, received, 32), 8u);
    for (std::uint32_t i = 0; i < 8; ++i) {
        EXPECT_EQ(*rte_pktmbuf_mtod(received[i], std::uint8_t*), i);
        EXPECT_EQ(packet_meta(received[i]).peer, i * 10);
        EXPECT_EQ(packet_meta(received[i]).stage,
                  i % 2 ? HandoffStage::encap : HandoffStage::decap);
        rte_pktmbuf_free(received[i]);
    }
}

TEST(Handoff, FullRingDropsAndCounts) {
    ASSERT_TRUE(register_packet_meta());
    Handoff handoff("ho_full", 1, 16);  // holds 15
    WorkerCounters counters;
    rte_mbuf* packets[20];
    for (auto& packet : packets) {
        packet = test::make_packet({1});
    }
    EXPECT_EQ(handoff.send(0, packets, 20, counters), 15u);
    EXPECT_EQ(counters.dropped(Drop::handoff_congested), 5u);
    EXPECT_EQ(counters.handed_off, 15u);
    // The destructor frees what is still queued: the EAL environment's pool must be whole.
}

}  // namespace
}  // namespace meshgate::dataplane
