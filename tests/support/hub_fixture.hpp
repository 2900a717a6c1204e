// A whole data plane in one process, without the control thread: tables built by hand, one
// or more workers on ring-backed ports, and simulated WireGuard clients that seal and open
// with their side of each keypair. Used by the dataplane pipeline tests and by
// bench/pipeline_bench, so both drive the real worker code path.
//
// Requires EAL to be initialised.
#pragma once

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_rcu_qsbr.h>

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "control/index_table.hpp"
#include "crypto/aead.hpp"
#include "crypto/batch_aead.hpp"
#include "crypto/x25519.hpp"
#include "dataplane/classify.hpp"
#include "dataplane/context.hpp"
#include "dataplane/eal.hpp"
#include "dataplane/encap.hpp"
#include "dataplane/exit_path.hpp"
#include "dataplane/headers.hpp"
#include "dataplane/worker.hpp"

namespace meshgate::test {

using dataplane::IpAddress;
using dataplane::PeerId;

inline IpAddress ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress address;
    address.bytes[0] = a, address.bytes[1] = b, address.bytes[2] = c, address.bytes[3] = d;
    return address;
}

// The client side of one peer: its keys mirror the gateway's keypair.
struct SimulatedPeer {
    PeerId id = 0;
    IpAddress tunnel_address;
    dataplane::Endpoint endpoint;
    rte_ether_addr mac{};
    crypto::SymmetricKey send_key;     // = gateway's receive key
    crypto::SymmetricKey receive_key;  // = gateway's send key
    std::uint32_t gateway_index = 0;   // what the client writes in its messages
    std::uint32_t client_index = 0;    // what the gateway writes in messages to the client
    std::uint64_t next_counter = 0;
};

class HubFixture {
  public:
    struct Options {
        unsigned peers = 2;
        unsigned workers = 1;
        std::uint8_t permissions = dataplane::permission_peers;
        std::optional<crypto::Backend> force_backend = std::nullopt;
        // An uplink (one ring-backed port, a queue per worker) with NAT on every worker,
        // next hop resolved, no rate limits, no flow log.
        bool exit = false;
        bool next_hop_resolved = true;      // ARP has answered for the uplink's router
        std::uint32_t nat_capacity = 1024;  // flows per worker's NAT table
    };

    explicit HubFixture(Options options) : options_(options) {
        static int instance = 0;
        name_ = "hub" + std::to_string(instance++);
        if (!dataplane::register_packet_meta()) {
            throw std::runtime_error("packet meta");
        }
        make_ports();
        // Sized as the gateway sizes it for this many peers and workers.
        const auto layout = control::IndexLayout::for_peers(options.workers, options.peers);
        if (!layout) {
            throw std::runtime_error("index layout");
        }
        indexes_ = std::make_unique<control::IndexTable>(*layout);
        sessions_ =
            std::make_unique<dataplane::SessionTable>((name_ + "_s").c_str(), *layout, nullptr);
        allowed_ = std::make_unique<dataplane::AllowedIps>(name_ + "_a", nullptr);
        handoff_ = std::make_unique<dataplane::Handoff>(name_ + "_h", options.workers, 4096);
        peers_ = std::make_unique<dataplane::PeerSlot[]>(options.peers);
        to_control_ = rte_ring_create((name_ + "_c").c_str(), 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);

        shared_.sessions = sessions_.get();
        shared_.peers = peers_.get();
        shared_.peer_capacity = options.peers;
        shared_.allowed_ips = allowed_.get();
        shared_.handoff = handoff_.get();
        shared_.to_control = to_control_;
        shared_.index_layout = *layout;
        shared_.tsc_hz = rte_get_tsc_hz();
        shared_.addresses.wan_mac = gateway_mac;
        shared_.addresses.wan_ipv4 = ipv4(198, 51, 100, 1);
        shared_.addresses.listen_port = listen_port;
        shared_.addresses.tunnel_ipv4 = ipv4(10, 100, 0, 1);

        for (unsigned w = 0; w < options.workers; ++w) {
            auto worker = std::make_unique<dataplane::WorkerContext>();
            worker->id = w;
            worker->port = ports_[w];
            worker->shared = &shared_;
            worker->classify.mac = gateway_mac;
            worker->classify.ipv4 = shared_.addresses.wan_ipv4->v4_network_order();
            worker->classify.listen_port = listen_port;
            worker->crypto = std::make_unique<crypto::BatchAead>(
                crypto::CpuFeatures::detect(),
                crypto::BatchAead::Options{.force = options.force_backend});
            workers_.push_back(std::move(worker));
        }
        std::vector<dataplane::AllowedIpChange> routes;
        for (unsigned p = 0; p < options.peers; ++p) {
            clients_.push_back(make_peer(p));
            routes.push_back({{clients_.back().tunnel_address, 32}, p});
        }
        if (!allowed_->apply(routes)) {
            throw std::runtime_error("allowed IPs full");
        }
        dataplane::record_host_addresses(peers_.get(), *allowed_, routes);
        if (options.exit) {
            make_exit();
        }
    }

    ~HubFixture() {
        workers_.clear();
        exit_workers_.clear();
        if (exit_) {
            rte_eth_dev_stop(exit_->port);
            rte_eth_dev_close(exit_->port);
            for (unsigned w = 0; w < uplink_rx_.size(); ++w) {
                drain(uplink_rx_[w]);
                drain(uplink_tx_[w]);
                rte_ring_free(uplink_rx_[w]);
                rte_ring_free(uplink_tx_[w]);
            }
        }
        drain(to_control_);
        rte_ring_free(to_control_);
        for (unsigned w = 0; w < ports_.size(); ++w) {
            rte_eth_dev_stop(ports_[w]);
            rte_eth_dev_close(ports_[w]);
            drain(rx_rings_[w]);
            drain(tx_rings_[w]);
            rte_ring_free(rx_rings_[w]);
            rte_ring_free(tx_rings_[w]);
        }
    }

    // An inner IPv4/UDP packet from one peer's tunnel address to another address.
    static std::vector<std::uint8_t> inner_udp(const IpAddress& source,
                                               const IpAddress& destination,
                                               std::size_t total_length, std::uint8_t ttl = 64) {
        std::vector<std::uint8_t> packet(std::max<std::size_t>(total_length, 28), 0);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(packet.data());
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(packet.size()));
        ip->time_to_live = ttl;
        ip->next_proto_id = 17;
        ip->src_addr = source.v4_network_order();
        ip->dst_addr = destination.v4_network_order();
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        udp->src_port = rte_cpu_to_be_16(1000);
        udp->dst_port = rte_cpu_to_be_16(2000);
        udp->dgram_len = rte_cpu_to_be_16(static_cast<std::uint16_t>(packet.size() - 20));
        for (std::size_t i = 28; i < packet.size(); ++i) {
            packet[i] = static_cast<std::uint8_t>(i);
        }
        return packet;
    }

    // The frame a client sends: inner packet sealed with its key, in UDP to the gateway.
    rte_mbuf* client_frame(SimulatedPeer& peer, const std::vector<std::uint8_t>& inner,
                           std::optional<std::uint64_t> counter = std::nullopt) {
        // (value_or would evaluate, and so bump, next_counter even when a counter is given)
        std::uint64_t used = counter ? *counter : peer.next_counter++;
        std::size_t padded = (inner.size() + 15) / 16 * 16;
        std::vector<std::uint8_t> plaintext(inner);
        plaintext.resize(padded, 0);
        std::vector<std::uint8_t> message(dataplane::wire::data_header_size + padded +
                                          crypto::aead_overhead);
        const std::uint32_t type = dataplane::wire::transport_data;
        std::memcpy(message.data(), &type, 4);
        std::memcpy(message.data() + 4, &peer.gateway_index, 4);
        std::memcpy(message.data() + 8, &used, 8);
        crypto::aead_seal({message.data() + dataplane::wire::data_header_size, padded + 16},
                          peer.send_key, used, plaintext, {});
        rte_mbuf* frame = rte_pktmbuf_alloc(pool());
        if (frame == nullptr) {
            throw std::runtime_error("hub fixture: packet pool exhausted or missing");
        }
        std::memcpy(rte_pktmbuf_append(frame, static_cast<std::uint16_t>(message.size())),
                    message.data(), message.size());
        dataplane::OuterAddresses outer{
            peer.mac, gateway_mac, peer.endpoint, {*shared_.addresses.wan_ipv4, listen_port}};
        dataplane::prepend_outer(frame, outer);
        return frame;
    }

    // Opens a frame the gateway sent to `peer`: nullopt unless it authenticates.
    std::optional<std::vector<std::uint8_t>> open_frame(SimulatedPeer& peer, rte_mbuf* frame) {
        if (dataplane::parse_outer(frame) != dataplane::OuterKind::udp ||
            !(dataplane::udp_destination(frame) == peer.endpoint)) {
            return std::nullopt;
        }
        const std::uint8_t* message = dataplane::udp_payload(frame);
        std::size_t length = dataplane::udp_payload_length(frame);
        std::uint32_t index;
        std::uint64_t counter;
        std::memcpy(&index, message + 4, 4);
        std::memcpy(&counter, message + 8, 8);
        if (index != peer.client_index || length < 32) {
            return std::nullopt;
        }
        std::vector<std::uint8_t> plaintext(length - 32);
        if (!crypto::aead_open(plaintext, peer.receive_key, counter, {message + 16, length - 16},
                               {})) {
            return std::nullopt;
        }
        return plaintext;
    }

    // What the workers sent through the tunnel so far, opened: [p] holds the inner packets
    // (padding included) that reached client p, in worker order. Frees every frame.
    std::vector<std::vector<std::vector<std::uint8_t>>> delivered() {
        std::vector<std::vector<std::vector<std::uint8_t>>> received(clients_.size());
        for (unsigned w = 0; w < workers_.size(); ++w) {
            for (rte_mbuf* frame : transmitted(w)) {
                for (unsigned p = 0; p < clients_.size(); ++p) {
                    if (auto inner = open_frame(clients_[p], frame)) {
                        received[p].push_back(std::move(*inner));
                        break;
                    }
                }
                rte_pktmbuf_free(frame);
            }
        }
        return received;
    }

    void inject(unsigned worker, rte_mbuf** frames, unsigned count) {
        if (rte_ring_enqueue_burst(rx_rings_[worker], reinterpret_cast<void**>(frames), count,
                                   nullptr) != count) {
            throw std::runtime_error("rx ring full");
        }
    }

    // What the workers transmitted so far (caller frees).
    std::vector<rte_mbuf*> transmitted(unsigned worker) { return take_all(tx_rings_[worker]); }

    // A frame from the uplink's router arriving on `worker`'s uplink queue (exit fixtures).
    void inject_uplink(unsigned worker, rte_mbuf* frame) {
        if (rte_ring_enqueue(uplink_rx_[worker], frame) != 0) {
            throw std::runtime_error("uplink rx ring full");
        }
    }
    // What the workers sent to the uplink so far (caller frees).
    std::vector<rte_mbuf*> uplink_transmitted(unsigned worker) {
        return take_all(uplink_tx_[worker]);
    }
    // An IP packet as the uplink's router delivers it: in Ethernet to the uplink's MAC.
    static rte_mbuf* from_router(const std::vector<std::uint8_t>& ip) {
        rte_mbuf* frame = rte_pktmbuf_alloc(pool());
        if (frame == nullptr) {
            throw std::runtime_error("hub fixture: packet pool exhausted or missing");
        }
        auto* ethernet = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(
            frame, static_cast<std::uint16_t>(sizeof(rte_ether_hdr) + ip.size())));
        ethernet->dst_addr = uplink_mac;
        ethernet->src_addr = router_mac;
        ethernet->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        std::memcpy(ethernet + 1, ip.data(), ip.size());
        return frame;
    }
    dataplane::ExitShared& exit() { return *exit_; }
    dataplane::ExitWorker& exit_worker(unsigned w) { return *exit_workers_[w]; }

    // Runs every worker until none has work left.
    void run_until_idle() {
        for (bool busy = true; busy;) {
            busy = false;
            for (auto& worker : workers_) {
                busy |= dataplane::worker_iteration(*worker) > 0;
            }
        }
    }

    dataplane::WorkerContext& worker(unsigned w) { return *workers_[w]; }
    SimulatedPeer& client(unsigned p) { return clients_[p]; }
    dataplane::PeerSlot& slot(unsigned p) { return peers_[p]; }
    dataplane::SharedTables& shared() { return shared_; }
    rte_ring* to_control() { return to_control_; }
    // Last freed, first allocated ("stack" ops), as a worker's mbufs behave in steady state:
    // a NIC's RX refills and TX completions go through the lcore's mempool cache, so the
    // packets in use stay within the rings' few thousand mbufs. The default ring ops hand
    // out the pool first-in first-out; the benchmark queues 2048 packets a chunk and frees them
    // together, far past the 256-mbuf cache, so every chunk then came from a different part
    // of the pool, while the crypto ceiling rows reuse one chunk's mbufs (pipeline_bench: exit
    // rows 7-13% slower for that alone). Laid out as the gateway lays out its own pool.
    static rte_mempool* pool() {
        static rte_mempool* made = [] {
            rte_mempool* pool = dataplane::create_packet_pool("hub_pool", 32767, "stack");
            if (pool == nullptr) {  // no mempool_stack driver: measure with the default ops
                pool = dataplane::create_packet_pool("hub_pool", 32767);
            }
            return pool;
        }();
        return made;
    }

    static constexpr std::uint16_t listen_port = 51820;
    static constexpr rte_ether_addr gateway_mac = {{0x02, 0, 0, 0, 0, 0x01}};

  private:
    static std::vector<rte_mbuf*> take_all(rte_ring* ring) {
        std::vector<rte_mbuf*> out;
        rte_mbuf* frame;
        while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&frame)) == 0) {
            out.push_back(frame);
        }
        return out;
    }

    static void drain(rte_ring* ring) {
        rte_mbuf* packet;
        while (ring != nullptr && rte_ring_dequeue(ring, reinterpret_cast<void**>(&packet)) == 0) {
            rte_pktmbuf_free(packet);
        }
    }

    // The ring PMD still wants the usual configure / queue setup / start sequence.
    static bool start(std::uint16_t port, std::uint16_t queues = 1) {
        rte_eth_conf conf{};
        if (rte_eth_dev_configure(port, queues, queues, &conf) != 0) {
            return false;
        }
        for (std::uint16_t q = 0; q < queues; ++q) {
            if (rte_eth_rx_queue_setup(port, q, 1024, SOCKET_ID_ANY, nullptr, pool()) != 0 ||
                rte_eth_tx_queue_setup(port, q, 1024, SOCKET_ID_ANY, nullptr) != 0) {
                return false;
            }
        }
        return rte_eth_dev_start(port) == 0;
    }

    // The uplink: 203.0.113.1/24 behind router_mac, ports 1024-65535 split among workers.
    void make_exit() {
        const unsigned workers = options_.workers;
        for (unsigned w = 0; w < workers; ++w) {
            std::string base = name_ + "_u" + std::to_string(w);
            uplink_rx_.push_back(rte_ring_create((base + "rx").c_str(), 8192, SOCKET_ID_ANY,
                                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
            uplink_tx_.push_back(rte_ring_create((base + "tx").c_str(), 8192, SOCKET_ID_ANY,
                                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
        }
        int port = rte_eth_from_rings((name_ + "_up").c_str(), uplink_rx_.data(), workers,
                                      uplink_tx_.data(), workers, SOCKET_ID_ANY);
        if (port < 0 ||
            !start(static_cast<std::uint16_t>(port), static_cast<std::uint16_t>(workers))) {
            throw std::runtime_error("uplink ring port");
        }
        exit_ = std::make_unique<dataplane::ExitShared>();
        dataplane::ExitShared& exit = *exit_;
        exit.port = static_cast<std::uint16_t>(port);
        exit.uplink.port = exit.port;
        exit.uplink.mac = uplink_mac;
        exit.ipv4 = uplink_ipv4;
        exit.uplink.ipv4 = uplink_ipv4.v4_network_order();
        exit.ports = {1024, 65535};
        exit.workers = workers;
        const dataplane::Prefix attached[] = {{uplink_ipv4, 24}, {ipv4(10, 100, 0, 0), 24}};
        exit.local = dataplane::LocalDestinations(attached);
        exit.tunnel = dataplane::LocalDestinations(std::span(attached).subspan(1), false);
        exit_counters_ = std::make_unique<dataplane::ExitCounters[]>(options_.peers);
        exit_limits_ = std::make_unique<dataplane::PeerRateLimitTable>(options_.peers);
        exit.counters = exit_counters_.get();
        exit.limits = exit_limits_.get();
        if (options_.next_hop_resolved) {
            exit.next_hop.publish(false, router_mac);
        }
        for (unsigned w = 0; w < workers; ++w) {
            auto state = std::make_unique<dataplane::ExitWorker>();
            state->shared = exit_.get();
            state->rx_queue = state->tx_queue = static_cast<std::uint16_t>(w);
            dataplane::NatOptions nat;
            nat.capacity = options_.nat_capacity;
            nat.ports = dataplane::split_port_range(exit.ports, workers, w);
            nat.uplink_v4 = uplink_ipv4;
            nat.ticks_per_second = rte_get_tsc_hz();
            state->nat =
                std::make_unique<dataplane::NatTable>(name_ + "_n" + std::to_string(w), nat);
            workers_[w]->exit = state.get();
            exit_workers_.push_back(std::move(state));
        }
    }

  public:
    static inline const IpAddress uplink_ipv4 = ipv4(203, 0, 113, 1);
    static constexpr rte_ether_addr uplink_mac = {{0x02, 0, 0, 0, 0, 0x11}};
    static constexpr rte_ether_addr router_mac = {{0x02, 0, 0, 0, 0, 0xfe}};

  private:
    void make_ports() {
        for (unsigned w = 0; w < options_.workers; ++w) {
            std::string base = name_ + "_" + std::to_string(w);
            rte_ring* rx = rte_ring_create((base + "rx").c_str(), 8192, SOCKET_ID_ANY,
                                           RING_F_SP_ENQ | RING_F_SC_DEQ);
            rte_ring* tx = rte_ring_create((base + "tx").c_str(), 8192, SOCKET_ID_ANY,
                                           RING_F_SP_ENQ | RING_F_SC_DEQ);
            int port = rte_eth_from_rings((base + "p").c_str(), &rx, 1, &tx, 1, SOCKET_ID_ANY);
            if (rx == nullptr || tx == nullptr || port < 0 ||
                !start(static_cast<std::uint16_t>(port))) {
                throw std::runtime_error("ring port");
            }
            rx_rings_.push_back(rx);
            tx_rings_.push_back(tx);
            ports_.push_back(static_cast<std::uint16_t>(port));
        }
    }

    // Peer p: tunnel 10.100.x.y, endpoint 198.51.100.x / 203.0.113.y, random keys, owner by
    // round robin, a keypair published under an index the control thread's allocator chose
    // (owner bits, a random slot of its own), as the gateway's would be.
    SimulatedPeer make_peer(unsigned p) {
        SimulatedPeer peer;
        peer.id = p;
        peer.tunnel_address =
            ipv4(10, static_cast<std::uint8_t>(100 + p / 62500),
                 static_cast<std::uint8_t>(p / 250 % 250), static_cast<std::uint8_t>(2 + p % 250));
        peer.endpoint = {ipv4(203, 0, static_cast<std::uint8_t>(113 + p / 60000),
                              static_cast<std::uint8_t>(p % 250 + 1)),
                         static_cast<std::uint16_t>(40000 + p % 20000)};
        peer.mac = {{0x02, 0, 0, static_cast<std::uint8_t>(p >> 16),
                     static_cast<std::uint8_t>(p >> 8), static_cast<std::uint8_t>(p)}};
        crypto::random_bytes(peer.send_key.data(), 32);
        crypto::random_bytes(peer.receive_key.data(), 32);
        unsigned owner = p % options_.workers;
        const std::optional<std::uint32_t> index = indexes_->allocate(p, owner);
        if (!index) {
            throw std::runtime_error("index table full");
        }
        peer.gateway_index = *index;
        peer.client_index = 0x40000000u | p;

        auto keypair = std::make_unique<dataplane::Keypair>();
        std::memcpy(keypair->receive_key.data(), peer.send_key.data(), 32);
        std::memcpy(keypair->send_key.data(), peer.receive_key.data(), 32);
        keypair->local_index = peer.gateway_index;
        keypair->remote_index = peer.client_index;
        keypair->peer = p;
        keypair->expire_at(rte_rdtsc() + 180 * rte_get_tsc_hz());
        dataplane::Keypair* published = keypair.get();
        if (!sessions_->publish(std::move(keypair))) {
            throw std::runtime_error("session table full");
        }
        dataplane::PeerSlot& slot = peers_[p];
        slot.current.store(published);
        slot.owner = static_cast<std::uint16_t>(owner);
        slot.permissions = options_.permissions;
        slot.configured.store(true);
        dataplane::set_peer_endpoint(slot, {peer.endpoint, peer.mac, true}, shared_.addresses);
        return peer;
    }

    Options options_;
    std::string name_;
    std::vector<rte_ring*> rx_rings_, tx_rings_;
    std::vector<std::uint16_t> ports_;
    std::unique_ptr<control::IndexTable> indexes_;
    std::unique_ptr<dataplane::SessionTable> sessions_;
    std::unique_ptr<dataplane::AllowedIps> allowed_;
    std::unique_ptr<dataplane::Handoff> handoff_;
    std::unique_ptr<dataplane::PeerSlot[]> peers_;
    rte_ring* to_control_ = nullptr;
    dataplane::SharedTables shared_;
    std::vector<std::unique_ptr<dataplane::WorkerContext>> workers_;
    std::vector<SimulatedPeer> clients_;
    std::vector<rte_ring*> uplink_rx_, uplink_tx_;
    std::unique_ptr<dataplane::ExitShared> exit_;
    std::unique_ptr<dataplane::ExitCounters[]> exit_counters_;
    std::unique_ptr<dataplane::PeerRateLimitTable> exit_limits_;
    std::vector<std::unique_ptr<dataplane::ExitWorker>> exit_workers_;
};

}  // namespace meshgate::test
