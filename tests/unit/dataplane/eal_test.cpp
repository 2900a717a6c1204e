// Ports: a vdev probed at run time starts with the queues asked for, and bad requests get
// errors an operator can act on.
#include "dataplane/eal.hpp"

#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

TEST(PortName, IsTheVdevNameOrPciAddress) {
    EXPECT_EQ(port_name("net_af_packet0,iface=veth0,qpairs=2"), "net_af_packet0");
    EXPECT_EQ(port_name("net_null0"), "net_null0");
    EXPECT_EQ(port_name("0000:03:00.0"), "0000:03:00.0");
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
