// The worker loop: one per lcore, run to completion, bursts of 32, never blocking.
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>

#include "dataplane/context.hpp"

namespace meshgate::dataplane {

// One pass: receive a burst from the port and process it, then drain this worker's handoff
// ring. Returns the number of packets taken in (0 = idle). For the loop, tests and benchmarks.
unsigned worker_iteration(WorkerContext& worker);

// Processes an already-received burst as if it came from the port (the benchmarks' injector).
void process_received(Burst<>& received, WorkerContext& worker);

// Loops until `running` turns false, reporting a quiescent state to `rcu` once per pass. With
// idle_sleep_us > 0 a pass that found nothing sleeps that long (workers sharing a core).
void run_worker(WorkerContext& worker, const std::atomic<bool>& running, rte_rcu_qsbr* rcu,
                unsigned idle_sleep_us = 0);

}  // namespace meshgate::dataplane
