// Ports: a vdev probed at run time starts with the queues asked for, and bad requests get
// errors an operator can act on. The packet pool: without hugepages its packets do not all
// start at one page offset, and each is a whole, writable buffer.
#include "dataplane/eal.hpp"

#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>

#include <cstring>
#include <set>
#include <vector>

#include "config/config.hpp"
#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

TEST(PortName, IsTheVdevNameOrPciAddress) {
    EXPECT_EQ(port_name("net_af_packet0,iface=veth0,qpairs=2"), "net_af_packet0");
    EXPECT_EQ(port_name("net_null0"), "net_null0");
    EXPECT_EQ(port_name("0000:03:00.0"), "0000:03:00.0");
}

TEST(PacketPool, WithoutHugepagesPacketsStartAtManyPageOffsets) {
    ASSERT_FALSE(rte_eal_has_hugepages());  // the unit tests' EAL runs with --no-huge
    rte_mempool* pool = create_packet_pool("pool_layout_test", 511, "stack");
    ASSERT_NE(pool, nullptr);
    EXPECT_STREQ(rte_mempool_get_ops(pool->ops_index)->name, "stack");
    std::vector<rte_mbuf*> packets(64);
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(pool, packets.data(), 64), 0);
    std::set<std::uintptr_t> offsets;
    for (rte_mbuf* packet : packets) {
        offsets.insert(rte_pktmbuf_mtod(packet, std::uintptr_t) % 4096);
        // The whole data room is there to write (nothing overlaps the next packet).
        char* data = rte_pktmbuf_append(packet, 1500);
        ASSERT_NE(data, nullptr);
        std::memset(data, static_cast<int>(offsets.size()), 1500);
    }
    // One packet per page put all 64 at a single offset; packed, they spread over the page.
    EXPECT_GT(offsets.size(), 32u);
    for (rte_mbuf* packet : packets) {
        EXPECT_EQ(rte_mbuf_check(packet, 1, nullptr), 0);
    }
    rte_pktmbuf_free_bulk(packets.data(), 64);
    rte_mempool_free(pool);
}

TEST(PacketPool, DefaultOpsWhenNoneAreNamed) {
    rte_mempool* pool = create_packet_pool("pool_ops_test", 511);
    ASSERT_NE(pool, nullptr);
    EXPECT_STREQ(rte_mempool_get_ops(pool->ops_index)->name, rte_mbuf_best_mempool_ops());
    rte_mbuf* packet = rte_pktmbuf_alloc(pool);
    ASSERT_NE(packet, nullptr);
    rte_pktmbuf_free(packet);
    rte_mempool_free(pool);
}

// DPDK's af_packet driver refuses to receive frames into buffers that cannot hold them:
// receive_pool() must give a port the buffers for the frames config sets, checked against the
// driver itself (on the loopback interface; nothing is sent). Other ports keep the shared pool.
TEST(PacketPool, AfPacketFramesGetBuffersThatHoldThem) {
    rte_mempool* shared = test::EalEnvironment::pool();
    std::string error;
    EXPECT_EQ(receive_pool(shared, 0, "no_pool", error), shared);
    EXPECT_EQ(receive_pool(shared, config::af_packet_default_frame_size, "no_pool", error), shared);

    ASSERT_EQ(rte_dev_probe("net_af_packet9,iface=lo,qpairs=1,framesz=8192,blocksz=8192"), 0);
    auto refused = start_port({.device = "net_af_packet9"}, shared);
    ASSERT_TRUE(std::holds_alternative<StartupError>(refused));
    EXPECT_NE(std::get<StartupError>(refused).message.find("rte_eth_rx_queue_setup"),
              std::string::npos);

    rte_mempool* pool = receive_pool(shared, 8192, "af_packet_pool_test", error);
    ASSERT_NE(pool, nullptr) << error;
    ASSERT_NE(pool, shared);
    EXPECT_GT(rte_pktmbuf_data_room_size(pool), 8192u);
    auto started = start_port({.device = "net_af_packet9"}, pool);
    ASSERT_TRUE(std::holds_alternative<Port>(started)) << std::get<StartupError>(started).message;
    stop_port(std::get<Port>(started));
    rte_mempool_free(pool);
}

TEST(StartPort, NullDeviceStartsAndTransmits) {
    ASSERT_EQ(rte_dev_probe("net_null0"), 0);
    auto result = start_port({.device = "net_null0", .rx_queues = 2, .tx_queues = 3},
                             test::EalEnvironment::pool());
    ASSERT_TRUE(std::holds_alternative<Port>(result)) << std::get<StartupError>(result).message;
    Port port = std::get<Port>(result);
    EXPECT_EQ(port.name, "net_null0");
    rte_mbuf* packet = test::make_packet(std::vector<std::uint8_t>(64, 1));
    EXPECT_EQ(rte_eth_tx_burst(port.id, 2, &packet, 1), 1);
    stop_port(port);
}

TEST(StartPort, UnknownDeviceIsAnError) {
    auto result = start_port({.device = "net_ring7"}, test::EalEnvironment::pool());
    ASSERT_TRUE(std::holds_alternative<StartupError>(result));
    EXPECT_NE(std::get<StartupError>(result).message.find("no such DPDK device"),
              std::string::npos);
}

TEST(StartPort, TooManyQueuesIsAnError) {
    ASSERT_EQ(rte_dev_probe("net_null1"), 0);
    auto result =
        start_port({.device = "net_null1", .rx_queues = 5000}, test::EalEnvironment::pool());
    ASSERT_TRUE(std::holds_alternative<StartupError>(result));
    EXPECT_NE(std::get<StartupError>(result).message.find("queues"), std::string::npos);
}

}  // namespace
}  // namespace meshgate::dataplane
