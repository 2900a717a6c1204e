// run_gateway(): everything between a validated configuration and packets flowing.
//
//   EAL ─► packet pool ─► WAN port (a queue pair per worker, one more for control)
//       ─► tables (sessions, peer slots, allowed IPs, handoff rings, control ring, RCU)
//       ─► the exit node, when a port has role uplink (exit_node.hpp)
//       ─► engine (transport in the data plane) with the configured peers
//       ─► workers launched on their lcores ─► control loop here, until a signal
#include "dataplane/gateway.hpp"

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include "control/engine.hpp"
#include "dataplane/classify.hpp"
#include "dataplane/control_lcore.hpp"
#include "dataplane/eal.hpp"
#include "dataplane/exit_node.hpp"
#include "dataplane/handoff.hpp"
#include "dataplane/worker.hpp"

namespace meshgate::dataplane {
namespace {

std::atomic<bool> running{true};

// EAL leaves its runtime directory (/var/run/dpdk/<file-prefix>) behind; we do not.
void shut_down_eal() {
    std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
}

void stop_on_signal(int) {
    running.store(false);
}

struct WorkerLaunch {
    WorkerContext* context;
    rte_rcu_qsbr* rcu;
    unsigned idle_sleep_us;
};

int worker_main(void* argument) {
    auto* launch = static_cast<WorkerLaunch*>(argument);
    run_worker(*launch->context, running, launch->rcu, launch->idle_sleep_us);
    return 0;
}

// The control socket: one request line, one text answer, then close. Non-blocking accept,
// polled from the control loop.
class ControlSocket {
  public:
    explicit ControlSocket(const std::string& path) : path_(path) {
        std::filesystem::create_directories(std::filesystem::path(path).parent_path());
        ::unlink(path.c_str());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
            ::listen(fd_, 8) != 0) {
            std::fprintf(stderr, "meshgate: control socket %s: %s\n", path.c_str(),
                         std::strerror(errno));
            if (fd_ >= 0) {
                ::close(fd_);
            }
            fd_ = -1;
            return;
        }
        ::chmod(path.c_str(), 0600);  // counters name peers: root only
    }
    ~ControlSocket() {
        if (fd_ >= 0) {
            ::close(fd_);
            ::unlink(path_.c_str());
        }
    }

    template <typename Answer>
    void serve(Answer&& answer) {
        if (fd_ < 0) {
            return;
        }
        int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) {
            return;
        }
        char request[64] = {};
        // The client writes its request before we get here in practice; don't block on it.
        ::recv(client, request, sizeof(request) - 1, MSG_DONTWAIT);
        std::string text = answer(std::string(request));
        for (std::size_t sent = 0; sent < text.size();) {
            ssize_t n = ::send(client, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) {
                break;
            }
            sent += static_cast<std::size_t>(n);
        }
        ::close(client);
    }

  private:
    std::string path_;
    int fd_ = -1;
};

struct Runtime {
    const config::Config& config;
    rte_mempool* pool = nullptr;
    Port port;
    unsigned workers = 0;
    rte_rcu_qsbr* rcu = nullptr;
    std::unique_ptr<SessionTable> sessions;
    std::unique_ptr<AllowedIps> allowed_ips;
    std::unique_ptr<Handoff> handoff;
    std::unique_ptr<PeerSlot[]> peers;
    rte_ring* to_control = nullptr;
    SharedTables shared;
    std::vector<std::unique_ptr<WorkerContext>> contexts;
    std::unique_ptr<ExitNode> exit;  // null without an uplink
    std::unique_ptr<control::Engine> engine;
    std::map<control::PeerId, PeerId> slot_of;
    std::vector<std::string> peer_names;
    WorkerCounters control_counters;  // the control thread's own RX queue

    explicit Runtime(const config::Config& c) : config(c) {}
    ~Runtime() {
        contexts.clear();
        handoff.reset();
        sessions.reset();
        allowed_ips.reset();
        if (to_control != nullptr) {
            rte_ring_free(to_control);
        }
        rte_free(rcu);
    }
};

const config::Port* port_with_role(const config::Config& config, config::PortRole role) {
    for (const config::Port& port : config.ports) {
        if (port.role == role) {
            return &port;
        }
    }
    return nullptr;
}

bool build_tables(Runtime& rt) {
    const std::uint32_t peer_count = static_cast<std::uint32_t>(rt.config.peers.size());
    const std::size_t rcu_size = rte_rcu_qsbr_get_memsize(rt.workers);
    rt.rcu = static_cast<rte_rcu_qsbr*>(rte_zmalloc("rcu", rcu_size, RTE_CACHE_LINE_SIZE));
    if (rt.rcu == nullptr || rte_rcu_qsbr_init(rt.rcu, rt.workers) != 0) {
        std::fprintf(stderr, "meshgate: cannot set up RCU\n");
        return false;
    }
    // Sized for every index the peers can hold at once, at half load (IndexLayout).
    const auto layout = control::IndexLayout::for_peers(rt.workers, peer_count);
    if (!layout) {
        std::fprintf(stderr, "meshgate: %u peers on %u workers: receiver indexes do not fit\n",
                     peer_count, rt.workers);
        return false;
    }
    rt.shared.index_layout = *layout;
    rt.sessions = std::make_unique<SessionTable>("sessions", *layout, rt.rcu);
    rt.allowed_ips = std::make_unique<AllowedIps>("allowed", rt.rcu);
    rt.handoff = std::make_unique<Handoff>("handoff", rt.workers, 4096);
    rt.peers = std::make_unique<PeerSlot[]>(std::max<std::uint32_t>(peer_count, 1));
    rt.to_control = rte_ring_create("to_control", 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (rt.to_control == nullptr) {
        std::fprintf(stderr, "meshgate: cannot create the control ring\n");
        return false;
    }
    return true;
}

bool add_peers(Runtime& rt) {
    control::ProtocolConfig protocol;
    protocol.transport_in_dataplane = true;
    protocol.index_layout = rt.shared.index_layout;
    rt.engine = std::make_unique<control::Engine>(rt.config.interface.private_key, protocol);
    std::vector<AllowedIpChange> routes;
    for (std::size_t i = 0; i < rt.config.peers.size(); ++i) {
        const config::Peer& peer = rt.config.peers[i];
        const PeerId slot = static_cast<PeerId>(i);
        const unsigned owner = static_cast<unsigned>(i % rt.workers);
        control::PeerOptions options{.public_key = peer.public_key,
                                     .preshared_key = peer.preshared_key,
                                     .endpoint = peer.endpoint,
                                     .persistent_keepalive_seconds = peer.persistent_keepalive,
                                     .owner = owner};
        auto id = rt.engine->add_peer(options);
        if (!id) {
            std::fprintf(stderr, "meshgate: peer %s: key refused (duplicate, ours, or low order)\n",
                         peer.name.c_str());
            return false;
        }
        rt.slot_of[*id] = slot;
        rt.peer_names.push_back(peer.name);
        PeerSlot& entry = rt.peers[slot];
        entry.owner = static_cast<std::uint16_t>(owner);
        entry.permissions = peer.permissions;  // same bit values as the data plane's
        entry.public_key = peer.public_key;
        entry.configured.store(true);
        for (const config::Prefix& prefix : peer.allowed_ips) {
            routes.push_back({{to_dataplane(prefix.address), prefix.length}, slot});
        }
    }
    if (!rt.allowed_ips->apply(routes)) {
        std::fprintf(stderr, "meshgate: allowed IPs table full\n");
        return false;
    }
    record_host_addresses(rt.peers.get(), *rt.allowed_ips, routes);
    return true;
}

void fill_addresses(Runtime& rt, const config::Port& wan) {
    GatewayAddresses& self = rt.shared.addresses;
    self.wan_mac = rt.port.mac;
    if (wan.address) {
        self.wan_ipv4 = to_dataplane(wan.address->address);
    }
    if (wan.address6) {
        self.wan_ipv6 = to_dataplane(wan.address6->address);
    }
    self.listen_port = rt.config.interface.listen_port;
    for (const config::Prefix& own : rt.config.interface.addresses) {
        (own.address.is_v6 ? self.tunnel_ipv6 : self.tunnel_ipv4) = to_dataplane(own.address);
    }
}

void make_workers(Runtime& rt) {
    const crypto::CpuFeatures cpu = crypto::CpuFeatures::detect();
    ClassifyContext classify;
    classify.mac = rt.port.mac;
    if (rt.shared.addresses.wan_ipv4) {
        classify.ipv4 = rt.shared.addresses.wan_ipv4->v4_network_order();
    }
    if (rt.shared.addresses.wan_ipv6) {
        classify.ipv6 = rt.shared.addresses.wan_ipv6->bytes;
        classify.has_ipv6 = true;
    }
    classify.listen_port = rt.config.interface.listen_port;
    for (unsigned w = 0; w < rt.workers; ++w) {
        auto context = std::make_unique<WorkerContext>();
        context->id = w;
        context->port = rt.port.id;
        context->rx_queue = static_cast<std::uint16_t>(w);
        context->tx_queue = static_cast<std::uint16_t>(w);
        context->classify = classify;
        context->shared = &rt.shared;
        context->crypto = std::make_unique<crypto::BatchAead>(cpu);
        rt.contexts.push_back(std::move(context));
    }
}

// The control thread's own RX queue gets its share of the port's traffic: handshakes and
// ARP/ND it handles itself (through the ring, like the workers' ones), transport data goes to
// the owner worker.
void receive_on_control_queue(Runtime& rt, const ClassifyContext& context) {
    Burst<> received;
    received.count = rte_eth_rx_burst(rt.port.id, static_cast<std::uint16_t>(rt.workers),
                                      received.packets, burst_size);
    if (received.count == 0) {
        return;
    }
    Classified out;
    classify(received, context, out, rt.control_counters);
    for (auto* burst : {&out.handshake, &out.neighbour}) {
        for (std::uint16_t i = 0; i < burst->count; ++i) {
            packet_meta(burst->packets[i]) = {0, HandoffStage::frame};
            if (rte_ring_enqueue(rt.to_control, burst->packets[i]) != 0) {
                drop_packet(burst->packets[i], Drop::handshake_ring_full, rt.control_counters);
            }
        }
    }
    for (std::uint16_t i = 0; i < out.data.count; ++i) {
        rte_mbuf* packet = out.data.packets[i];
        std::uint32_t index;
        std::memcpy(&index, udp_payload(packet) + 4, 4);
        packet_meta(packet) = {0, HandoffStage::decap};
        rt.handoff->send(rt.shared.index_layout.owner_of(index) % rt.workers, &packet, 1,
                         rt.control_counters);
    }
}

std::string render_show(Runtime& rt, const ControlLcore& control) {
    std::ostringstream out;
    out << "interface: public key " << crypto::to_base64(rt.engine->public_key())
        << ", listen port " << rt.config.interface.listen_port << ", " << rt.workers
        << " worker(s), crypto " << crypto::CpuFeatures::detect().describe() << "\n";
    for (std::size_t i = 0; i < rt.peer_names.size(); ++i) {
        PeerSlot& slot = rt.peers[i];
        EndpointRecord record = slot.read_endpoint();
        const PeerCounters& c = slot.counters;
        out << "peer " << rt.peer_names[i] << ": endpoint "
            << (record.known ? to_engine_endpoint(record.endpoint).to_string() : "(none)")
            << ", session " << (slot.current.load() != nullptr ? "yes" : "no") << ", rx "
            << c.rx_packets << " packets " << c.rx_bytes << " bytes, tx " << c.tx_packets
            << " packets " << c.tx_bytes << " bytes\n";
    }
    auto worker_line = [&out](const std::string& name, const WorkerCounters& c) {
        out << name << ": rx " << c.rx_packets << " packets " << c.rx_bytes << " bytes, tx "
            << c.tx_packets << " packets " << c.tx_bytes << " bytes, to control " << c.to_control
            << ", handed off " << c.handed_off << ", fragments made " << c.fragments_made
            << ", ICMP errors sent " << c.icmp_errors_sent << " suppressed "
            << c.icmp_errors_suppressed << "\n";
        for (std::size_t r = 0; r < drop_reason_count; ++r) {
            if (c.drops[r] != 0) {
                out << "  drop " << drop_name(static_cast<Drop>(r)) << " " << c.drops[r] << "\n";
            }
        }
    };
    for (auto& context : rt.contexts) {
        worker_line("worker " + std::to_string(context->id), context->counters);
    }
    worker_line("control rx", rt.control_counters);
    if (rt.exit) {
        rt.exit->render(out, rt.peer_names);
    }
    const ControlCounters& cc = control.counters();
    out << "control: handshake frames " << cc.handshake_frames << ", neighbour frames "
        << cc.neighbour_frames << ", staged " << cc.staged_packets << ", datagrams sent "
        << cc.datagrams_sent << " (unresolved " << cc.datagrams_unresolved << "), keypairs "
        << cc.keypairs_installed << " installed " << cc.keypairs_retired << " retired "
        << cc.keypairs_refused << " refused\n";
    for (std::size_t r = 0; r < control::engine_drop_count; ++r) {
        auto reason = static_cast<control::EngineDrop>(r);
        if (rt.engine->drops(reason) != 0) {
            out << "  engine drop " << control::engine_drop_name(reason) << " "
                << rt.engine->drops(reason) << "\n";
        }
    }
    return out.str();
}

}  // namespace

int run_gateway(const config::Config& config, const std::vector<std::string>& eal_overrides,
                const std::string& control_socket) {
    const config::Port* wan = port_with_role(config, config::PortRole::wan);
    const config::Port* uplink = port_with_role(config, config::PortRole::uplink);
    if (auto result = init_eal(config::eal_arguments(config, eal_overrides));
        std::holds_alternative<StartupError>(result)) {
        std::fprintf(stderr, "meshgate: %s\n", std::get<StartupError>(result).message.c_str());
        return 1;
    }
    if (!register_packet_meta()) {
        std::fprintf(stderr, "meshgate: cannot register the mbuf metadata field\n");
        shut_down_eal();
        return 1;
    }
    int status = 1;
    {
        Runtime rt(config);
        rt.workers = static_cast<unsigned>(config.workers.lcores.size());
        if (rte_lcore_count() < rt.workers + 1) {
            std::fprintf(stderr,
                         "meshgate: EAL has %u lcores, %u workers and the control thread need %u\n",
                         rte_lcore_count(), rt.workers, rt.workers + 1);
            shut_down_eal();
            return 1;
        }
        rt.pool = create_packet_pool("packets", 32767);
        if (rt.pool == nullptr) {
            std::fprintf(stderr,
                         "meshgate: cannot create the packet pool (give EAL more memory)\n");
            shut_down_eal();
            return 1;
        }
        std::string pool_error;
        rte_mempool* wan_pool =
            receive_pool(rt.pool, config::af_packet_frame_size(*wan), "wan_packets", pool_error);
        if (wan_pool == nullptr) {
            std::fprintf(stderr, "meshgate: %s\n", pool_error.c_str());
            shut_down_eal();
            return 1;
        }
        auto started = start_port({.device = wan->device,
                                   .rx_queues = static_cast<std::uint16_t>(rt.workers + 1),
                                   .tx_queues = static_cast<std::uint16_t>(rt.workers + 1),
                                   .mtu = wan->mtu},
                                  wan_pool);
        if (auto* error = std::get_if<StartupError>(&started)) {
            std::fprintf(stderr, "meshgate: %s\n", error->message.c_str());
            shut_down_eal();
            return 1;
        }
        rt.port = std::get<Port>(started);
        bool exit_ready = true;
        if (uplink != nullptr) {
            auto started_exit = ExitNode::start(config, *uplink, rt.pool, rt.workers);
            if (auto* error = std::get_if<StartupError>(&started_exit)) {
                std::fprintf(stderr, "meshgate: %s\n", error->message.c_str());
                exit_ready = false;
            } else {
                rt.exit = std::move(std::get<std::unique_ptr<ExitNode>>(started_exit));
            }
        }
        if (exit_ready && build_tables(rt) && add_peers(rt)) {
            rt.shared.sessions = rt.sessions.get();
            rt.shared.peers = rt.peers.get();
            rt.shared.peer_capacity = static_cast<std::uint32_t>(config.peers.size());
            rt.shared.allowed_ips = rt.allowed_ips.get();
            rt.shared.handoff = rt.handoff.get();
            rt.shared.to_control = rt.to_control;
            rt.shared.tsc_hz = rte_get_tsc_hz();
            fill_addresses(rt, *wan);
            make_workers(rt);
            std::optional<ControlPort> uplink_control;
            if (rt.exit) {
                rt.exit->attach(rt.contexts);
                uplink_control = rt.exit->control_port(rt.pool);
            }

            ControlPort control_port;
            control_port.port = rt.port.id;
            control_port.tx_queue = static_cast<std::uint16_t>(rt.workers);
            control_port.pool = rt.pool;
            control_port.mac = rt.port.mac;
            control_port.ipv4 = rt.shared.addresses.wan_ipv4;
            control_port.ipv6 = rt.shared.addresses.wan_ipv6;
            control_port.ipv4_prefix = wan->address ? wan->address->length : 32;
            control_port.ipv6_prefix = wan->address6 ? wan->address6->length : 128;
            if (wan->next_hop) {
                control_port.next_hop_v4 = to_dataplane(*wan->next_hop);
            }
            if (wan->next_hop6) {
                control_port.next_hop_v6 = to_dataplane(*wan->next_hop6);
            }
            ControlLcore control(*rt.engine, rt.shared, *rt.sessions, rt.peers.get(), rt.slot_of,
                                 control_port, uplink_control,
                                 rt.exit ? rt.exit->next_hops() : nullptr);

            std::signal(SIGINT, stop_on_signal);
            std::signal(SIGTERM, stop_on_signal);
            std::vector<WorkerLaunch> launches(rt.workers);
            unsigned w = 0;
            unsigned lcore;
            RTE_LCORE_FOREACH_WORKER(lcore) {
                if (w == rt.workers) {
                    break;
                }
                launches[w] = {rt.contexts[w].get(), rt.rcu, config.workers.idle_sleep_us};
                rte_eal_remote_launch(worker_main, &launches[w], lcore);
                ++w;
            }
            std::fprintf(stderr, "meshgate: running: %u worker(s), port %s, public key %s\n",
                         rt.workers, rt.port.name.c_str(),
                         crypto::to_base64(rt.engine->public_key()).c_str());
            ControlSocket socket(control_socket);
            const ClassifyContext classify = rt.contexts[0]->classify;
            while (running.load()) {
                receive_on_control_queue(rt, classify);
                auto now = std::chrono::steady_clock::now().time_since_epoch();
                unsigned work = control.poll(std::chrono::duration_cast<control::Duration>(now),
                                             std::chrono::system_clock::now());
                if (rt.exit) {
                    work += rt.exit->poll_control_queue(*rt.handoff, rt.to_control);
                    work += static_cast<unsigned>(rt.exit->drain_flow_log());
                }
                socket.serve([&](const std::string&) { return render_show(rt, control); });
                if (work == 0) {
                    rte_delay_us_sleep(
                        config.workers.idle_sleep_us != 0 ? config.workers.idle_sleep_us : 20);
                }
            }
            rte_eal_mp_wait_lcore();
            std::fprintf(stderr, "meshgate: stopped\n%s", render_show(rt, control).c_str());
            status = 0;
        }
        stop_port(rt.port);
    }
    shut_down_eal();
    return status;
}

int show_gateway(const std::string& control_socket) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, control_socket.c_str(), sizeof(address.sun_path) - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        std::fprintf(stderr, "meshgate show: cannot reach %s: %s (is meshgate running?)\n",
                     control_socket.c_str(), std::strerror(errno));
        if (fd >= 0) {
            ::close(fd);
        }
        return 1;
    }
    const char request[] = "show\n";
    ::send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL);
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        std::fwrite(buffer, 1, static_cast<std::size_t>(n), stdout);
    }
    ::close(fd);
    return 0;
}

}  // namespace meshgate::dataplane
