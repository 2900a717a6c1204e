#include "dataplane/exit_node.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace meshgate::dataplane {
namespace {

constexpr unsigned flow_log_queue_size = 4096;  // records per worker
constexpr std::size_t flow_log_drain = 1024;    // records written per control loop, at most

Prefix to_prefix(const config::Prefix& prefix) {
    return canonical({to_dataplane(prefix.address), prefix.length});
}

NatOptions nat_options(const config::Config& config, const ExitShared& exit, unsigned workers,
                       unsigned worker) {
    const config::Nat& nat = config.exit.nat;
    NatOptions options;
    options.capacity = nat.table_size;
    options.ports = split_port_range(exit.ports, workers, worker);
    if (exit.ipv4) {
        options.uplink_v4 = *exit.ipv4;
    }
    if (exit.ipv6) {
        options.uplink_v6 = *exit.ipv6;
    }
    options.ticks_per_second = rte_get_tsc_hz();
    options.timeouts = {nat.tcp_established_timeout, nat.tcp_transitory_timeout, nat.udp_timeout,
                        nat.icmp_timeout};
    return options;
}

}  // namespace

IpAddress to_dataplane(const config::IpAddress& address) {
    IpAddress out;
    out.bytes = address.bytes;
    out.is_v6 = address.is_v6;
    return out;
}

std::variant<std::unique_ptr<ExitNode>, StartupError> ExitNode::start(const config::Config& config,
                                                                      const config::Port& uplink,
                                                                      rte_mempool* pool,
                                                                      unsigned workers) {
    std::unique_ptr<ExitNode> node(new ExitNode());
    node->uplink_ = uplink;
    const auto queues = static_cast<std::uint16_t>(workers + 1);
    std::string error;
    rte_mempool* uplink_pool =
        receive_pool(pool, config::af_packet_frame_size(uplink), "uplink_packets", error);
    if (uplink_pool == nullptr) {
        return StartupError{error};
    }
    auto started = start_port(
        {.device = uplink.device, .rx_queues = queues, .tx_queues = queues, .mtu = uplink.mtu},
        uplink_pool);
    if (auto* failed = std::get_if<StartupError>(&started)) {
        return *failed;
    }
    node->port_ = std::get<Port>(started);
    if ((uplink.address && !uplink.next_hop) || (uplink.address6 && !uplink.next_hop6)) {
        std::fprintf(stderr,
                     "meshgate: warning: uplink %s has an address without a next hop: exit "
                     "traffic of that family is dropped (uplink_unresolved)\n",
                     uplink.name.c_str());
    }
    node->port_started_ = true;
    if (auto error = node->build(config, uplink, workers)) {
        return *error;
    }
    return node;
}

ExitNode::~ExitNode() {
    flow_log_.reset();  // drains the queues while they exist
    if (port_started_) {
        stop_port(port_);
    }
}

std::optional<StartupError> ExitNode::build(const config::Config& config,
                                            const config::Port& uplink, unsigned workers) {
    shared_ = std::make_unique<ExitShared>();
    ExitShared& exit = *shared_;
    exit.port = port_.id;
    exit.uplink.port = port_.id;
    exit.uplink.mac = port_.mac;
    if (uplink.address) {
        exit.ipv4 = to_dataplane(uplink.address->address);
        exit.uplink.ipv4 = exit.ipv4->v4_network_order();
    }
    if (uplink.address6) {
        exit.ipv6 = to_dataplane(uplink.address6->address);
        exit.uplink.ipv6 = exit.ipv6->bytes;
        exit.uplink.has_ipv6 = true;
    }
    exit.mtu = uplink.mtu != 0 ? uplink.mtu : RTE_ETHER_MTU;
    exit.ports = {config.exit.nat.port_first, config.exit.nat.port_last};
    exit.workers = workers;
    exit.mss_clamp = config.exit.mss_clamp;
    exit.clock = WallClock::now();
    exit.flow_log = !config.exit.flow_log.empty();
    const std::size_t peers = std::max<std::size_t>(config.peers.size(), 1);
    counters_ = std::make_unique<ExitCounters[]>(peers);
    limits_ = std::make_unique<PeerRateLimitTable>(peers);
    exit.counters = counters_.get();
    exit.limits = limits_.get();
    try {
        exit.local = LocalDestinations(attached_subnets(config));
        std::vector<Prefix> tunnel;
        for (const config::Prefix& own : config.interface.addresses) {
            tunnel.push_back(to_prefix(own));
        }
        exit.tunnel = LocalDestinations(tunnel, false);
        for (std::size_t i = 0; i < config.peers.size(); ++i) {
            limits_->configure(static_cast<PeerId>(i), profiles_, config.peers[i]);
        }
        std::vector<FlowLogQueue*> queues;
        for (unsigned w = 0; w < workers; ++w) {
            auto state = std::make_unique<ExitWorker>();
            state->shared = shared_.get();
            state->rx_queue = state->tx_queue = static_cast<std::uint16_t>(w);
            state->nat = std::make_unique<NatTable>("nat_w" + std::to_string(w),
                                                    nat_options(config, exit, workers, w));
            if (exit.flow_log) {
                state->flow_log = std::make_unique<FlowLogQueue>("flowlog_w" + std::to_string(w),
                                                                 flow_log_queue_size);
                queues.push_back(state->flow_log.get());
            }
            workers_.push_back(std::move(state));
        }
        if (exit.flow_log) {
            flow_log_path_ = config.exit.flow_log;
            const auto directory = std::filesystem::path(flow_log_path_).parent_path();
            if (!directory.empty()) {
                std::filesystem::create_directories(directory);
            }
            flow_log_ = std::make_unique<FlowLogWriter>(flow_log_path_, queues);
        }
    } catch (const std::exception& error) {
        return StartupError{std::string("exit node: ") + error.what()};
    }
    return std::nullopt;
}

void ExitNode::attach(const std::vector<std::unique_ptr<WorkerContext>>& contexts) {
    for (std::size_t w = 0; w < contexts.size() && w < workers_.size(); ++w) {
        contexts[w]->exit = workers_[w].get();
    }
}

ControlPort ExitNode::control_port(rte_mempool* pool) const {
    ControlPort port;
    port.port = port_.id;
    port.tx_queue = static_cast<std::uint16_t>(shared_->workers);
    port.pool = pool;
    port.mac = port_.mac;
    port.ipv4 = shared_->ipv4;
    port.ipv6 = shared_->ipv6;
    port.ipv4_prefix = uplink_.address ? uplink_.address->length : 32;
    port.ipv6_prefix = uplink_.address6 ? uplink_.address6->length : 128;
    if (uplink_.next_hop) {
        port.next_hop_v4 = to_dataplane(*uplink_.next_hop);
    }
    if (uplink_.next_hop6) {
        port.next_hop_v6 = to_dataplane(*uplink_.next_hop6);
    }
    return port;
}

unsigned ExitNode::poll_control_queue(Handoff& handoff, rte_ring* to_control) {
    Burst<> received;
    received.count = rte_eth_rx_burst(port_.id, static_cast<std::uint16_t>(shared_->workers),
                                      received.packets, burst_size);
    if (received.count == 0) {
        return 0;
    }
    UplinkClassified out;
    classify_uplink(received, shared_->uplink, out, control_counters_);
    send_to_control(out.neighbour, to_control, Drop::neighbour_ring_full, control_counters_);
    // The control thread owns no port slice: every packet goes to a worker.
    Burst<> released;  // stays empty: every packet's owner is a worker
    steer_inbound(out.inbound, shared_->workers, *shared_, handoff, control_fragments_, released,
                  control_counters_);
    return received.count;
}

std::size_t ExitNode::drain_flow_log() {
    return flow_log_ ? flow_log_->drain(flow_log_drain) : 0;
}

void ExitNode::render(std::ostream& out, const std::vector<std::string>& peer_names) const {
    out << "uplink: port " << port_.name << ", MTU " << shared_->mtu << ", next hop "
        << (shared_->next_hop.get(false) ? "resolved" : "unresolved") << " (IPv4), "
        << (shared_->next_hop.get(true) ? "resolved" : "unresolved") << " (IPv6)\n";
    for (std::size_t i = 0; i < peer_names.size(); ++i) {
        const ExitCounters& c = counters_[i];
        out << "exit " << peer_names[i] << ": out " << c.packets_out << " packets " << c.bytes_out
            << " bytes, in " << c.packets_in << " packets " << c.bytes_in
            << " bytes, refused no_exit " << c.refused_no_exit << " local_needs_lan "
            << c.refused_local_needs_lan << ", rate limited ingress " << c.rate_limited_ingress
            << " egress " << c.rate_limited_egress << "\n";
    }
    for (std::size_t w = 0; w < workers_.size(); ++w) {
        const NatTable& nat = *workers_[w]->nat;
        const NatCounters& c = nat.counters();
        out << "nat worker " << w << ": ports " << nat.ports().first << "-" << nat.ports().last
            << ", active " << c.active << ", created " << c.created << ", refused " << c.refused
            << ", expired " << c.expired << ", records lost " << c.records_lost
            << ", later fragments " << c.fragments << " (first fragments displaced "
            << nat.fragments_displaced() << "); uplink pings answered "
            << workers_[w]->uplink_echo_replies << "\n";
    }
    const WorkerCounters& c = control_counters_;
    out << "control uplink rx: " << c.rx_packets << " packets, to control " << c.to_control
        << ", handed off " << c.handed_off << ", dropped " << c.total_drops() << "\n";
    if (flow_log_) {
        out << "flow log: " << flow_log_path_ << ", written " << flow_log_->written()
            << ", write errors " << flow_log_->write_errors() << ", dropped "
            << flow_log_->dropped() << "\n";
    }
}

}  // namespace meshgate::dataplane
