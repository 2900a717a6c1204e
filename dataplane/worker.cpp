// The worker loop. Each pass reads as the pipeline:
//
//   RX burst ─► classify ─┬─ handshake, ARP/ND ─────────────────► control thread's ring
//                         └─ transport data ─► decap ─► route ─► encap ─► TX
//                                                │         │
//                     other worker owns the peer ┘         └ other worker owns the destination
//                                                   (handoff rings, drained every pass)
//
//   handoff ring ─┬─ decap stage ─► decap ─► route ─► encap ─► TX
//                 ├─ encap stage ─────────────────► encap ─► TX
//                 └─ uplink stage ─► exit_inbound (reverse NAT) ─► encap ─► TX
//
//   uplink RX burst (exit node only) ─► receive_from_uplink (exit_path.hpp): route's
//   exit_outbound sends the other way
#include "dataplane/worker.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "dataplane/decap.hpp"
#include "dataplane/encap.hpp"
#include "dataplane/exit_path.hpp"
#include "dataplane/receive.hpp"
#include "dataplane/route.hpp"

namespace meshgate::dataplane {
namespace {

void to_control(Burst<>& burst, Drop when_full, WorkerContext& worker) {
    send_to_control(burst, worker.shared->to_control, when_full, worker.counters);
}

void decap_route_encap(Burst<>& burst, WorkerContext& worker, bool from_handoff) {
    if (decap(burst, worker, from_handoff) == 0) {
        return;
    }
    if (route(burst, worker) == 0) {
        return;
    }
    encap(burst, worker);
    transmit(burst, worker);
}

unsigned drain_handoff(WorkerContext& worker) {
    Burst<> handed;
    handed.count = static_cast<std::uint16_t>(
        worker.shared->handoff->receive(worker.id, handed.packets, burst_size));
    if (handed.count == 0) {
        return 0;
    }
    Burst<> to_decap, to_encap, from_uplink;
    for (std::uint16_t i = 0; i < handed.count; ++i) {
        rte_mbuf* packet = handed.packets[i];
        const HandoffStage stage = packet_meta(packet).stage;
        (stage == HandoffStage::decap    ? to_decap
         : stage == HandoffStage::uplink ? from_uplink
                                         : to_encap)
            .push(packet);
    }
    if (!from_uplink.empty()) {
        exit_inbound(from_uplink, worker);
    }
    if (!to_decap.empty()) {
        decap_route_encap(to_decap, worker, true);
    }
    if (!to_encap.empty()) {
        encap(to_encap, worker);
        transmit(to_encap, worker);
    }
    return handed.count;
}

}  // namespace

void process_received(Burst<>& received, WorkerContext& worker) {
    Classified classified;
    classify(received, worker.classify, classified, worker.counters);
    received.clear();
    prefetch_lookahead_headers(worker.lookahead);
    to_control(classified.handshake, Drop::handshake_ring_full, worker);
    to_control(classified.neighbour, Drop::neighbour_ring_full, worker);
    if (!classified.data.empty()) {
        decap_route_encap(classified.data, worker, false);
    }
}

unsigned worker_iteration(WorkerContext& worker) {
    Burst<> received = receive_ahead(worker.port, worker.rx_queue, worker.lookahead);
    unsigned work = received.count;
    if (received.count > 0) {
        process_received(received, worker);
    }
    if (worker.exit != nullptr) {
        work += receive_from_uplink(worker);
        exit_housekeeping(worker, work == 0);
    }
    return work + drain_handoff(worker);
}

void run_worker(WorkerContext& worker, const std::atomic<bool>& running, rte_rcu_qsbr* rcu,
                unsigned idle_sleep_us) {
    if (rcu != nullptr) {
        rte_rcu_qsbr_thread_register(rcu, worker.id);
        rte_rcu_qsbr_thread_online(rcu, worker.id);
    }
    while (running.load(std::memory_order_relaxed)) {
        const unsigned work = worker_iteration(worker);
        // Nothing from the tables is held across passes: each pass ends quiescent.
        if (rcu != nullptr) {
            rte_rcu_qsbr_quiescent(rcu, worker.id);
        }
        if (work == 0 && idle_sleep_us != 0) {
            rte_delay_us_sleep(idle_sleep_us);
        }
    }
    if (rcu != nullptr) {
        rte_rcu_qsbr_thread_offline(rcu, worker.id);
        rte_rcu_qsbr_thread_unregister(rcu, worker.id);
    }
}

}  // namespace meshgate::dataplane
