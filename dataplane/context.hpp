// What a worker needs, in one cache-aligned WorkerContext passed explicitly to every stage
// (no global arrays indexed by lcore), and the tables all workers share.
#pragma once

#include <rte_cycles.h>
#include <rte_ring.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

#include "crypto/batch_aead.hpp"
#include "dataplane/allowed_ips.hpp"
#include "dataplane/classify.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/handoff.hpp"
#include "dataplane/icmp_error.hpp"
#include "dataplane/receive.hpp"
#include "dataplane/tables.hpp"

namespace meshgate::dataplane {

struct ExitWorker;  // exit_path.hpp

// The gateway's own addresses, as workers use them. Written once at start-up.
struct GatewayAddresses {
    rte_ether_addr wan_mac{};
    std::optional<IpAddress> wan_ipv4;  // outer source for IPv4 endpoints
    std::optional<IpAddress> wan_ipv6;  // outer source for IPv6 endpoints
    std::uint16_t listen_port = 0;
    std::optional<IpAddress> tunnel_ipv4;  // answers ICMP echo inside the tunnel
    std::optional<IpAddress> tunnel_ipv6;
};

// Shared by all workers; built by the control thread before workers launch. The pointed-to
// tables carry their own writer rules (see each header).
struct SharedTables {
    SessionTable* sessions = nullptr;
    PeerSlot* peers = nullptr;
    std::uint32_t peer_capacity = 0;
    AllowedIps* allowed_ips = nullptr;
    Handoff* handoff = nullptr;
    // Packets for the control thread (handshakes, ARP/ND, packets awaiting a session).
    // Multi-producer (workers), single consumer (control).
    rte_ring* to_control = nullptr;
    // What a receiver index's bits mean (owner worker, session slot): the layout the control
    // thread's index table allocates with and `sessions` was built for.
    control::IndexLayout index_layout;
    std::uint16_t tunnel_mtu = 1420;  // inner packets are padded to 16 bytes, never past this
    GatewayAddresses addresses;
    std::uint64_t tsc_hz = 0;
};

// Per worker, owned by its lcore; the control thread reads `counters` racily.
struct alignas(64) WorkerContext {
    unsigned id = 0;
    std::uint16_t port = 0;
    std::uint16_t rx_queue = 0;
    std::uint16_t tx_queue = 0;
    ClassifyContext classify;
    const SharedTables* shared = nullptr;
    std::unique_ptr<crypto::BatchAead> crypto;
    WorkerCounters counters;
    IcmpErrorLimiter icmp_errors{rte_get_tsc_hz()};  // the errors this worker sends (route.hpp)
    ExitWorker* exit = nullptr;  // the uplink side; null when the gateway has no uplink
    // The next burst from the port, received one pass early while the port is busy
    // (receive.hpp). Empty whenever the port is idle.
    Burst<> lookahead;

    WorkerContext() = default;
    WorkerContext(const WorkerContext&) = delete;
    WorkerContext& operator=(const WorkerContext&) = delete;
    ~WorkerContext() { release_lookahead(lookahead); }
};

}  // namespace meshgate::dataplane
