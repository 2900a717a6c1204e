// EAL, mempools, ports and queues. All of it is cold code, run once at start by the main
// lcore before any worker is launched.
#pragma once

#include <rte_ether.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace meshgate::dataplane {

// An error for the operator: printed as is, then meshgate exits.
struct StartupError {
    std::string message;
};

// rte_eal_init with these arguments (argv[0] included). Returns an error if EAL refuses.
std::variant<std::monostate, StartupError> init_eal(const std::vector<std::string>& args);

// The pool every port receives into and every worker allocates from. `ops` names the
// mempool handler (null: the platform default, a ring). Null when EAL has no memory for it.
//
// Without hugepages the packets are packed end to end across 4 KiB pages. DPDK's default keeps
// each object inside one page, as a physically contiguous buffer for a NIC's DMA, so it put
// one packet per page: every packet's data then started at the same page offset, and the same
// bytes of all the packets of a burst fell into the same L1 sets (the set index is the
// address modulo 4 KiB). The AEAD works on the same block of 16 packets at once: 16 lines
// for 8 ways, evicted on every pass (pipeline_bench at 1420 B: 20% slower, the crypto-only
// rows as much as the pipeline). Without hugepages EAL runs IOVA as virtual addresses and
// there are no physical pages to keep whole for a device.
rte_mempool* create_packet_pool(const std::string& name, unsigned packets,
                                const char* ops = nullptr);

struct PortRequest {
    std::string device;  // a PCI address, or a vdev string ("net_af_packet0,iface=veth0")
    std::uint16_t rx_queues = 1;
    std::uint16_t tx_queues = 1;
    std::uint16_t descriptors = 1024;
    std::uint16_t mtu = 0;  // 0: the device's default
};

struct Port {
    std::uint16_t id = 0;
    std::string name;
    rte_ether_addr mac{};
    bool rss = false;  // more than one RX queue, spread by the NIC's hash
};

// The DPDK port name of a device string: the vdev name before the first comma, or the PCI address.
std::string port_name(const std::string& device);

// Finds the port EAL probed for `request.device`, configures and starts it.
std::variant<Port, StartupError> start_port(const PortRequest& request, rte_mempool* pool);

void stop_port(const Port& port);

}  // namespace meshgate::dataplane
