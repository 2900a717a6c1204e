// One configured peer: its identity, where it is, its handshake and keypairs, its timers and
// the packets waiting for a session.
//
// Owned by the engine; control thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "control/cookie.hpp"
#include "control/endpoint.hpp"
#include "control/index_table.hpp"
#include "control/keypairs.hpp"
#include "control/noise.hpp"

namespace meshgate::control {

using WallClock = std::chrono::system_clock::time_point;

// Deadlines of the whitepaper's timers (§6.1-§6.5); nullopt = not armed.
struct PeerTimers {
    std::optional<Timestamp> retransmit_handshake;
    std::optional<Timestamp> send_keepalive;
    std::optional<Timestamp> new_handshake;
    std::optional<Timestamp> zero_key_material;
    std::optional<Timestamp> persistent_keepalive;
    std::optional<Timestamp> handshake_attempt_started;  // first initiation of this attempt
    std::optional<Timestamp> last_initiation_sent;
    bool sent_lastminute_handshake = false;
};

struct PeerCounters {
    std::uint64_t rx_bytes = 0, tx_bytes = 0;
    std::uint64_t handshakes_completed = 0;
};

struct Peer {
    Peer(PeerId id, const noise::LocalIdentity& local, const crypto::PublicKey& public_key,
         const crypto::PresharedKey& preshared_key)
        : id(id), identity(local, public_key, preshared_key), cookie(public_key) {}

    PeerId id;
    noise::RemoteIdentity identity;
    std::optional<Endpoint> endpoint;
    std::uint16_t persistent_keepalive_seconds = 0;
    unsigned owner = 0;  // the data-plane worker that owns this peer

    noise::Handshake handshake;
    CookieMaker cookie;
    Keypairs keypairs;

    // Responder-side replay and flood state for initiations.
    std::optional<crypto::Tai64n> latest_timestamp;
    std::optional<Timestamp> last_initiation_consumed;

    PeerTimers timers;
    std::deque<std::vector<std::uint8_t>> staged;
    std::optional<WallClock> last_handshake;  // wall time, as UAPI reports it
    PeerCounters counters;
};

}  // namespace meshgate::control
