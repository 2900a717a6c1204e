// The exit node assembled from a configuration (issue 5): the uplink port (a queue pair per
// worker and one for the control thread, like the WAN), the state the exit path shares, one
// NAT table and flow-log queue per worker, the flow-log writer, and what `meshgate show`
// prints about them. Cold code: built by the control thread before workers launch; its
// control-thread calls (poll_control_queue, drain_flow_log, render) run on the main lcore.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "dataplane/control_lcore.hpp"
#include "dataplane/eal.hpp"
#include "dataplane/exit_path.hpp"

namespace meshgate::dataplane {

// A configured address as the data plane holds it.
IpAddress to_dataplane(const config::IpAddress& address);

class ExitNode {
  public:
    // Starts the uplink port and builds every table. `peer_capacity` slots of per-peer state,
    // indexed like the gateway's PeerSlots (config order).
    static std::variant<std::unique_ptr<ExitNode>, StartupError> start(const config::Config& config,
                                                                       const config::Port& uplink,
                                                                       rte_mempool* pool,
                                                                       unsigned workers);
    ~ExitNode();
    ExitNode(const ExitNode&) = delete;
    ExitNode& operator=(const ExitNode&) = delete;

    // Gives each worker its exit state (context->exit). Before the workers launch.
    void attach(const std::vector<std::unique_ptr<WorkerContext>>& contexts);

    // What the control thread needs to answer ARP/ND on the uplink and resolve its next hops.
    ControlPort control_port(rte_mempool* pool) const;
    NextHopMacs* next_hops() { return &shared_->next_hop; }

    // ---- control thread, once per loop ----
    // The control thread's own uplink RX queue: ARP/ND to its ring, the rest to the workers
    // owning the NAT ports. Returns packets received.
    unsigned poll_control_queue(Handoff& handoff, rte_ring* to_control);
    // Moves flow log records from the workers' queues to the file (bounded).
    std::size_t drain_flow_log();
    // Per-peer exit counters, per-worker NAT counters, the flow log's state.
    void render(std::ostream& out, const std::vector<std::string>& peer_names) const;

  private:
    ExitNode() = default;
    std::optional<StartupError> build(const config::Config& config, const config::Port& uplink,
                                      unsigned workers);

    Port port_;
    bool port_started_ = false;
    config::Port uplink_;
    std::unique_ptr<ExitShared> shared_;
    std::unique_ptr<ExitCounters[]> counters_;
    std::unique_ptr<PeerRateLimitTable> limits_;
    RateProfiles profiles_;
    std::vector<std::unique_ptr<ExitWorker>> workers_;
    std::unique_ptr<FlowLogWriter> flow_log_;  // after workers_: drains their queues first
    std::string flow_log_path_;
    WorkerCounters control_counters_;     // the control thread's uplink RX queue
    FragmentSteering control_fragments_;  // of the control thread's uplink queue
};

}  // namespace meshgate::dataplane
