// EAL, mempools, ports and queues. All of it is cold code, run once at start by the main
// lcore before any worker is launched.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>
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
//
// `data_room` is each buffer's size, headroom included (DPDK's default holds a 2048-byte frame).
rte_mempool* create_packet_pool(const std::string& name, unsigned packets,
                                const char* ops = nullptr,
                                std::uint16_t data_room = RTE_MBUF_DEFAULT_BUF_SIZE);

// The buffer size (headroom included) DPDK's af_packet driver needs to receive into with
// frames of `frame_size` bytes (config::af_packet_frame_size): it refuses a smaller pool.
std::uint16_t af_packet_data_room(std::uint32_t frame_size);

// The pool a port receives into: `pool`, or for an af_packet device whose frames
// (`af_packet_frame_size`, 0 for other devices) do not fit its buffers, a pool named `name`
// whose buffers do (4095 of them: 34 MB for 8 KiB frames; enough for the port's bursts, the
// handoff rings and every lcore's mempool cache). What the port receives goes on in those
// buffers, and fragments split from it come from them too. Null (with `error` set) when EAL
// has no memory for it.
rte_mempool* receive_pool(rte_mempool* pool, std::uint32_t af_packet_frame_size,
                          const std::string& name, std::string& error);

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
