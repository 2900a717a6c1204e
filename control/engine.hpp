// The WireGuard protocol engine, sans I/O (DESIGN.md "control/"; boringtun's shape).
//
//   on_datagram(bytes, from, now, wall, under_load)   a UDP payload arrived
//   send(peer, packet, now, wall)                     the caller has a packet for a peer
//   tick(now, wall)                                   time passed: run the timers
//
// Each returns the Actions to carry out, in order. `now` is monotonic (timers); `wall` is only
// used for TAI64N timestamps and for reporting the last handshake time. The engine never reads
// a clock, never touches a socket, and never throws on untrusted input: a bad message becomes
// a drop action with a reason, counted in drops().
//
// Control thread only; not safe for concurrent use.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "control/actions.hpp"
#include "control/cookie.hpp"
#include "control/index_table.hpp"
#include "control/peer.hpp"
#include "control/protocol_config.hpp"
#include "control/ratelimiter.hpp"
#include "crypto/cpu_features.hpp"

namespace meshgate::control {

// What the data plane saw of a peer since the last report (transport_in_dataplane mode): the
// engine's timers run on these instead of on packets it handles itself.
struct DataplaneActivity {
    bool authenticated_received = false;  // any packet, keepalives included
    bool data_received = false;           // a packet with a payload
    bool authenticated_sent = false;
    bool data_sent = false;
    bool next_confirmed = false;        // the responder's `next` keypair received data
    std::uint64_t sending_counter = 0;  // of the current keypair, for REKEY_AFTER_MESSAGES
};

struct PeerOptions {
    crypto::PublicKey public_key{};
    crypto::PresharedKey preshared_key = {};  // zero: none
    std::optional<Endpoint> endpoint = std::nullopt;
    std::uint16_t persistent_keepalive_seconds = 0;
    unsigned owner = 0;
};

// One received UDP payload, for on_datagrams.
struct Datagram {
    std::span<const std::uint8_t> bytes;
    Endpoint from;
};

class Engine {
  public:
    Engine(const crypto::PrivateKey& private_key, const ProtocolConfig& config);

    // Configuration (cold). add_peer refuses a duplicate key, our own key, or a low-order key.
    std::optional<PeerId> add_peer(const PeerOptions& options);
    Actions remove_peer(PeerId peer);
    Peer* peer(PeerId id);
    Peer* peer_by_key(const crypto::PublicKey& key);
    const crypto::PublicKey& public_key() const { return local_.public_key; }

    // Events.
    Actions on_datagram(std::span<const std::uint8_t> datagram, const Endpoint& from, Timestamp now,
                        WallClock wall, bool under_load);
    // A burst, as the control thread drains it from its ring: the same outcome as
    // on_datagram for each, except that the initiations' Diffie-Hellman computations run
    // together (crypto::dh_batch, several per SIMD pass), and their actions come after the
    // other messages'.
    Actions on_datagrams(std::span<const Datagram> datagrams, Timestamp now, WallClock wall,
                         bool under_load);
    Actions send(PeerId peer, std::span<const std::uint8_t> packet, Timestamp now, WallClock wall);
    Actions tick(Timestamp now, WallClock wall);
    // Starts a handshake now (tests, the interop harness's "rekey mid-stream").
    Actions initiate(PeerId peer, Timestamp now, WallClock wall);
    // transport_in_dataplane: the workers' report for one peer (see DataplaneActivity).
    Actions on_dataplane_activity(PeerId peer, const DataplaneActivity& activity, Timestamp now,
                                  WallClock wall);

    std::uint64_t drops(EngineDrop reason) const {
        return drops_[static_cast<std::size_t>(reason)];
    }
    const ProtocolConfig& config() const { return config_; }
    std::size_t index_count() const { return indexes_.size(); }

  private:
    // Handshake messages (engine.cpp).
    void dispatch(std::span<const std::uint8_t> datagram, const Endpoint& from, Timestamp now,
                  WallClock wall, bool under_load, Actions& out);
    bool admit_handshake(std::span<const std::uint8_t> message, std::uint32_t sender_index,
                         const Endpoint& from, Timestamp now, bool under_load, Actions& out);
    void on_initiation(std::span<const std::uint8_t> message, const Endpoint& from, Timestamp now,
                       WallClock wall, bool under_load, Actions& out);
    // The two halves of answering an initiation, each with its DH terms optionally computed
    // by the caller: authenticate it and accept it for its peer (nullptr: dropped and
    // counted), then send the response and install the session.
    Peer* consume_initiation(const Initiation& initiation, const Endpoint& from, Timestamp now,
                             const noise::PrecomputedDh* es, Actions& out);
    void respond(Peer& sender, const Endpoint& from, Timestamp now,
                 const noise::ResponderEphemeral* ephemeral, Actions& out);
    void on_response(std::span<const std::uint8_t> message, const Endpoint& from, Timestamp now,
                     WallClock wall, bool under_load, Actions& out);
    void on_cookie_reply(std::span<const std::uint8_t> message, Timestamp now, Actions& out);
    void send_initiation(Peer& peer, Timestamp now, WallClock wall, bool retry, Actions& out);
    void install_session(Peer& peer, noise::SessionKeys&& keys, Timestamp now, Actions& out);
    void retire(Peer& peer, std::vector<std::unique_ptr<Keypair>> retired, Actions& out);

    // Transport data (transport.cpp).
    void on_data(std::span<const std::uint8_t> message, const Endpoint& from, Timestamp now,
                 WallClock wall, Actions& out);
    void send_data(Peer& peer, std::span<const std::uint8_t> packet, Timestamp now, WallClock wall,
                   Actions& out);
    void send_staged(Peer& peer, Timestamp now, WallClock wall, Actions& out);
    void seal_and_send(Peer& peer, Keypair& keypair, std::span<const std::uint8_t> packet,
                       Actions& out);
    void stage(Peer& peer, std::span<const std::uint8_t> packet);
    bool usable_for_sending(const Keypair& keypair, Timestamp now) const;
    void keep_key_fresh_after_sending(Peer& peer, const Keypair& keypair, Timestamp now,
                                      WallClock wall, Actions& out);
    void keep_key_fresh_after_receiving(Peer& peer, Timestamp now, WallClock wall, Actions& out);
    void confirm_next(Peer& peer, const Keypair* keypair, Timestamp now, WallClock wall,
                      Actions& out);

    // Timer hooks, named after events (timers.cpp).
    void on_handshake_initiated(Peer& peer, Timestamp now);
    void on_handshake_complete(Peer& peer, Timestamp now, WallClock wall);
    void on_session_derived(Peer& peer, Timestamp now);
    void on_authenticated_packet_received(Peer& peer, Timestamp now);
    void on_authenticated_packet_sent(Peer& peer, Timestamp now);
    void on_data_received(Peer& peer, Timestamp now);
    void on_data_sent(Peer& peer, Timestamp now);
    void run_timers(Peer& peer, Timestamp now, WallClock wall, Actions& out);
    Duration jitter();

    void count(EngineDrop reason, Actions& out, PeerId peer = 0);

    ProtocolConfig config_;
    noise::LocalIdentity local_;
    CookieChecker cookie_checker_;
    RateLimiter rate_limiter_;
    IndexTable indexes_;
    std::unordered_map<PeerId, std::unique_ptr<Peer>> peers_;
    std::map<crypto::PublicKey, PeerId> peers_by_key_;
    PeerId next_peer_id_ = 1;
    std::array<std::uint64_t, engine_drop_count> drops_{};
    Timestamp last_collect_{};
    crypto::CpuFeatures cpu_;  // picks dh_batch's IFMA path
};

}  // namespace meshgate::control
