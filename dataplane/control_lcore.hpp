// The control thread's side of the data plane (DESIGN.md): it drains the ring the workers fill
// (handshakes, ARP/ND, packets waiting for a session), runs the protocol engine, and carries
// out its actions on the data plane's tables and on its own TX queue.
//
//   ring ─┬─ handshake frame ─► Engine::on_datagram ─┐
//         ├─ ARP / ND frame ──► ArpNd (replies) ─────┤
//         └─ staged packet ───► Engine::send ────────┤
//   timers: Engine::tick, worker activity,           │
//           the uplink's next hops (ARP/ND) ─────────┤
//                                                    ▼
//   actions: send_to ─► outer headers ─► control TX queue
//            transmit ─► plaintext to the owner worker's handoff ring (it owns the counter)
//            install_keypair / retire_keypair ─► session table, peer slots (RCU)
//
// Control lcore only: it is the single writer of sessions, peer slots and allowed IPs.
#pragma once

#include <rte_mempool.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "control/engine.hpp"
#include "dataplane/arp_nd.hpp"
#include "dataplane/context.hpp"
#include "dataplane/exit_path.hpp"

namespace meshgate::dataplane {

// A port whose neighbours the control thread resolves and answers for: the WAN, and the
// uplink of an exit node. Frames from each reach the ring with mbuf->port naming it.
struct ControlPort {
    std::uint16_t port = 0;
    std::uint16_t tx_queue = 0;  // the control thread's own queue
    rte_mempool* pool = nullptr;
    rte_ether_addr mac{};
    std::optional<IpAddress> ipv4, ipv6;                // the port's own addresses
    std::uint8_t ipv4_prefix = 32, ipv6_prefix = 128;   // their subnets
    std::optional<IpAddress> next_hop_v4, next_hop_v6;  // routers for off-link endpoints
};

struct ControlCounters {
    std::uint64_t handshake_frames = 0;
    std::uint64_t neighbour_frames = 0;
    std::uint64_t staged_packets = 0;
    std::uint64_t datagrams_sent = 0;
    std::uint64_t datagrams_unresolved = 0;  // no MAC known yet for the destination
    std::uint64_t transmits_handed_off = 0;
    std::uint64_t keypairs_installed = 0;
    std::uint64_t keypairs_retired = 0;
    std::uint64_t keypairs_refused = 0;  // the session table's slot was taken
};

class ControlLcore {
  public:
    // `engine` must run with transport_in_dataplane. Engine peer ids map to peer slots in the
    // order peers were added: slot_of[engine id] (set up by the caller).
    // `uplink`: the exit node's uplink, whose next-hop MACs are published to `next_hops`
    // for the workers (both or neither).
    ControlLcore(control::Engine& engine, SharedTables& shared, SessionTable& sessions,
                 PeerSlot* peers, std::map<control::PeerId, PeerId> slot_of, ControlPort wan,
                 std::optional<ControlPort> uplink = std::nullopt,
                 NextHopMacs* next_hops = nullptr);

    // One pass of the control loop; returns how much work it found (0 = idle).
    unsigned poll(control::Timestamp now, control::WallClock wall);

    const ControlCounters& counters() const { return counters_; }

  private:
    struct NeighbourPort {
        ControlPort port;
        ArpNd arp;
    };

    // Handles a frame, except a handshake datagram, which joins `handshakes` (the frame stays
    // alive in `held` until the engine has seen the whole pass's batch). True if held.
    bool on_frame(rte_mbuf* frame, control::Timestamp now, control::WallClock wall);
    void apply(const control::Actions& actions, control::Timestamp now, control::WallClock wall);
    void send_datagram(const control::Action& action);
    void hand_to_owner(const control::Action& action);
    void install(const control::Action& action, control::Timestamp now);
    void sync_slot(control::PeerId engine_peer);
    void poll_activity(control::Timestamp now, control::WallClock wall);
    std::optional<rte_ether_addr> mac_for(const IpAddress& address, std::uint64_t now_ns);
    void resolve_next_hops(std::uint64_t now_ns);
    void transmit_frame(const Frame& bytes, const ControlPort& port);

    control::Engine& engine_;
    SharedTables& shared_;
    SessionTable& sessions_;
    PeerSlot* peers_;
    std::map<control::PeerId, PeerId> slot_of_;
    std::map<PeerId, control::PeerId> engine_of_;
    NeighbourPort wan_;
    std::optional<NeighbourPort> uplink_;
    NextHopMacs* next_hops_ = nullptr;
    // Keypairs this thread published, by local index (it alone adds and retires them).
    std::unordered_map<std::uint32_t, Keypair*> published_;
    // Source MACs of handshake packets: where to answer before ARP has spoken.
    std::map<std::array<std::uint8_t, 17>, rte_ether_addr> learned_;
    struct Seen {
        std::uint64_t rx = 0, tx = 0, data_rx = 0, data_tx = 0;
    };
    std::map<PeerId, Seen> seen_;
    std::map<control::PeerId, PeerId>::const_iterator activity_cursor_;
    control::Timestamp next_tick_{};
    ControlCounters counters_;
    // One pass's handshake datagrams (payloads inside the held frames), reused across passes.
    std::vector<control::Datagram> handshakes_;
    std::vector<rte_mbuf*> held_;
};

// Conversions between the engine's endpoint and the data plane's address types.
control::Endpoint to_engine_endpoint(const Endpoint& endpoint);
Endpoint from_engine_endpoint(const control::Endpoint& endpoint);

}  // namespace meshgate::dataplane
