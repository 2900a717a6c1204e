// Handoff: packets reach their owner in order with their metadata; a full ring drops and
// counts instead of blocking; a batch sends runs of packets for one owner together, in order.
#include "dataplane/handoff.hpp"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

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

// Owners 1, 1, 2, 2, 2, 1 and then a full burst for 2: every packet reaches its owner in
// the order added, and nothing is sent before the owner changes, the batch fills, or flush().
TEST(HandoffBatch, SendsRunsPerOwnerInOrder) {
    ASSERT_TRUE(register_packet_meta());
    Handoff handoff("ho_batch", 3, 256);
    WorkerCounters counters;
    std::vector<std::pair<unsigned, std::uint8_t>> sent;  // (owner, payload byte)
    rte_mbuf* received[64];
    {
        HandoffBatch batch(handoff, counters);
        const unsigned owners[] = {1, 1, 2, 2, 2, 1};
        std::uint8_t next = 0;
        for (unsigned owner : owners) {
            batch.add(owner, test::make_packet({next}));
            sent.push_back({owner, next++});
        }
        EXPECT_EQ(counters.handed_off, 5u) << "the last run (one packet for 1) is still held";
        for (unsigned i = 0; i < burst_size + 3; ++i) {
            batch.add(2, test::make_packet({next}));
            sent.push_back({2, next++});
        }
        EXPECT_EQ(counters.handed_off, 6u + burst_size) << "a full batch goes out at once";
        batch.flush();
        EXPECT_EQ(counters.handed_off, sent.size());
        batch.add(1, test::make_packet({next}));
        sent.push_back({1, next++});
    }  // out of scope: sent
    EXPECT_EQ(counters.handed_off, sent.size());
    for (unsigned owner = 0; owner < 3; ++owner) {
        std::vector<std::uint8_t> expected;
        for (auto [to, byte] : sent) {
            if (to == owner) {
                expected.push_back(byte);
            }
        }
        const unsigned count = handoff.receive(owner, received, 64);
        ASSERT_EQ(count, expected.size()) << "owner " << owner;
        for (unsigned i = 0; i < count; ++i) {
            EXPECT_EQ(*rte_pktmbuf_mtod(received[i], std::uint8_t*), expected[i]);
            rte_pktmbuf_free(received[i]);
        }
    }
}

}  // namespace
}  // namespace meshgate::dataplane
