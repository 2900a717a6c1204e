// The protocol's timing and counting constants (whitepaper §6), gathered in one struct so
// tests can shorten them. Defaults are the whitepaper's.
#pragma once

#include <chrono>
#include <cstdint>

#include "control/index_layout.hpp"

namespace meshgate::control {

using Duration = std::chrono::nanoseconds;
using namespace std::chrono_literals;

struct ProtocolConfig {
    std::uint64_t rekey_after_messages = 1ULL << 60;
    std::uint64_t reject_after_messages = ~std::uint64_t{0} - (1ULL << 13);
    Duration rekey_after_time = 120s;
    Duration reject_after_time = 180s;
    Duration rekey_attempt_time = 90s;
    Duration rekey_timeout = 5s;
    Duration rekey_timeout_jitter_max = 334ms;  // retries add up to a third of a second
    Duration keepalive_timeout = 10s;
    Duration cookie_secret_lifetime = 120s;
    Duration cookie_lifetime = 120s;  // as initiator: how long a received cookie is used
    std::uint32_t max_staged_packets = 128;
    std::uint32_t max_initiations_per_second = 50;  // per peer, as responder
    // Per-source handshake rate limit while under load (kernel: 20/s, burst 5).
    std::uint32_t handshakes_per_second_per_source = 20;
    std::uint32_t handshake_burst_per_source = 5;
    std::uint32_t max_rate_limited_sources = 16384;
    // Receiver indexes: which bits name the owner worker and the session table slot. The
    // gateway sizes it for its workers and peers (IndexLayout::for_peers).
    IndexLayout index_layout;
    // In the gateway, transport data is sealed and opened by data-plane workers, which own
    // the send counters and replay windows. The engine must then never seal a packet itself
    // (two counters for one key would reuse nonces): it asks for a `transmit` instead, and
    // learns about traffic through Engine::on_dataplane_activity().
    bool transport_in_dataplane = false;

    Duration wipe_after() const { return reject_after_time * 3; }
};

}  // namespace meshgate::control
