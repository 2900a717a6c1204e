#include "dataplane/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>

#include <linux/if_packet.h>

#include <algorithm>
#include <cstring>

namespace meshgate::dataplane {
namespace {

constexpr unsigned mempool_cache = 256;  // per lcore

StartupError port_error(const Port& port, const char* what, int rc) {
    return {"port " + port.name + ": " + what + " failed: " + std::strerror(rc < 0 ? -rc : rc)};
}

rte_eth_conf port_configuration(const rte_eth_dev_info& info, const PortRequest& request,
                                bool& rss) {
    rte_eth_conf conf{};
    rss = request.rx_queues > 1 && info.flow_type_rss_offloads != 0;
    if (rss) {
        // A WireGuard peer is one UDP 5-tuple, so RSS spreads peers, never one peer's packets:
        // hashing on addresses and ports is all there is to gain.
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    if (request.mtu != 0) {
        conf.rxmode.mtu = request.mtu;
    }
    return conf;
}

}  // namespace

std::variant<std::monostate, StartupError> init_eal(const std::vector<std::string>& args) {
    std::vector<std::string> copies = args;  // rte_eal_init may permute argv
    std::vector<char*> argv;
    for (std::string& arg : copies) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(copies.size()), argv.data()) < 0) {
        return StartupError{std::string("EAL initialisation failed: ") + rte_strerror(rte_errno)};
    }
    return std::monostate{};
}

rte_mempool* create_packet_pool(const std::string& name, unsigned packets, const char* ops,
                                std::uint16_t data_room) {
    const int socket = static_cast<int>(rte_socket_id());
    if (rte_eal_has_hugepages()) {
        return rte_pktmbuf_pool_create_by_ops(name.c_str(), packets, mempool_cache, 0, data_room,
                                              socket, ops);
    }
    // rte_pktmbuf_pool_create_by_ops() step by step, for the one flag it does not take.
    rte_pktmbuf_pool_private private_data{};
    private_data.mbuf_data_room_size = data_room;
    rte_mempool* pool =
        rte_mempool_create_empty(name.c_str(), packets, sizeof(rte_mbuf) + data_room, mempool_cache,
                                 sizeof(private_data), socket, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
    if (pool == nullptr) {
        return nullptr;
    }
    const char* handler = ops != nullptr ? ops : rte_mbuf_best_mempool_ops();
    if (rte_mempool_set_ops_byname(pool, handler, nullptr) != 0) {
        rte_mempool_free(pool);
        return nullptr;
    }
    rte_pktmbuf_pool_init(pool, &private_data);
    if (rte_mempool_populate_default(pool) < 0) {
        rte_mempool_free(pool);
        return nullptr;
    }
    rte_mempool_obj_iter(pool, rte_pktmbuf_init, nullptr);
    return pool;
}

std::uint16_t af_packet_data_room(std::uint32_t frame_size) {
    // The driver's check at queue setup: what a frame holds after its tpacket2 header must fit
    // in a buffer after the headroom. (TPACKET2_HDRLEN counts a sockaddr_ll that the driver
    // does not count.)
    constexpr std::uint32_t header = TPACKET2_HDRLEN - sizeof(sockaddr_ll);
    const std::uint32_t data = frame_size > header ? frame_size - header : 0;
    const std::uint32_t room =
        std::max<std::uint32_t>(data + RTE_PKTMBUF_HEADROOM, RTE_MBUF_DEFAULT_BUF_SIZE);
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(room, UINT16_MAX));
}

rte_mempool* receive_pool(rte_mempool* pool, std::uint32_t af_packet_frame_size,
                          const std::string& name, std::string& error) {
    constexpr unsigned packets = 4095;
    const std::uint16_t data_room = af_packet_data_room(af_packet_frame_size);
    if (data_room <= rte_pktmbuf_data_room_size(pool)) {
        return pool;
    }
    rte_mempool* own = create_packet_pool(name, packets, nullptr, data_room);
    if (own == nullptr) {
        error = "cannot create the packet pool " + name + " (" + std::to_string(packets) +
                " buffers of " + std::to_string(data_room) + " bytes, for frames of " +
                std::to_string(af_packet_frame_size) + "): give EAL more memory";
    }
    return own;
}

std::string port_name(const std::string& device) {
    return device.substr(0, device.find(','));
}

std::variant<Port, StartupError> start_port(const PortRequest& request, rte_mempool* pool) {
    Port port;
    port.name = port_name(request.device);
    if (rte_eth_dev_get_port_by_name(port.name.c_str(), &port.id) != 0) {
        return StartupError{"port " + port.name +
                            ": no such DPDK device (is it bound to a DPDK "
                            "driver, or is the vdev string right?)"};
    }
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port.id, &info); rc != 0) {
        return port_error(port, "rte_eth_dev_info_get", rc);
    }
    if (request.rx_queues > info.max_rx_queues || request.tx_queues > info.max_tx_queues) {
        return StartupError{"port " + port.name + ": needs " + std::to_string(request.rx_queues) +
                            " RX and " + std::to_string(request.tx_queues) +
                            " TX queues, the device offers " + std::to_string(info.max_rx_queues) +
                            " and " + std::to_string(info.max_tx_queues)};
    }
    rte_eth_conf conf = port_configuration(info, request, port.rss);
    if (int rc = rte_eth_dev_configure(port.id, request.rx_queues, request.tx_queues, &conf);
        rc != 0) {
        return port_error(port, "rte_eth_dev_configure", rc);
    }
    std::uint16_t rx_descriptors = request.descriptors;
    std::uint16_t tx_descriptors = request.descriptors;
    rte_eth_dev_adjust_nb_rx_tx_desc(port.id, &rx_descriptors, &tx_descriptors);
    const int socket = rte_eth_dev_socket_id(port.id);
    const unsigned socket_id = socket < 0 ? SOCKET_ID_ANY : static_cast<unsigned>(socket);
    for (std::uint16_t queue = 0; queue < request.rx_queues; ++queue) {
        if (int rc =
                rte_eth_rx_queue_setup(port.id, queue, rx_descriptors, socket_id, nullptr, pool);
            rc != 0) {
            return port_error(port, "rte_eth_rx_queue_setup", rc);
        }
    }
    for (std::uint16_t queue = 0; queue < request.tx_queues; ++queue) {
        if (int rc = rte_eth_tx_queue_setup(port.id, queue, tx_descriptors, socket_id, nullptr);
            rc != 0) {
            return port_error(port, "rte_eth_tx_queue_setup", rc);
        }
    }
    if (int rc = rte_eth_dev_start(port.id); rc != 0) {
        return port_error(port, "rte_eth_dev_start", rc);
    }
    // Promiscuous: af_packet/af_xdp on a veth and most test setups need it, and the classify
    // stage checks destination addresses itself. Not every driver supports it; that is fine.
    rte_eth_promiscuous_enable(port.id);
    rte_eth_macaddr_get(port.id, &port.mac);
    return port;
}

void stop_port(const Port& port) {
    rte_eth_dev_stop(port.id);
    rte_eth_dev_close(port.id);
}

}  // namespace meshgate::dataplane
