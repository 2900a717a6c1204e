// The tables workers read and the control thread writes (DESIGN.md, "Tables").
//
//   sessions   receiver index -> Keypair      rte_hash, lock-free readers, RCU-deferred free
//   peers      PeerId -> PeerSlot             fixed array; fields tagged with their writer
//
// Publication rule: the control thread fills a Keypair completely, then adds it to the
// session hash (a release); a worker that finds it sees every field. Removal: the control
// thread deletes the hash entry, waits for every worker's quiescent state (rte_rcu_qsbr),
// and only then wipes and frees the keypair. Workers never wait and never lock.
#pragma once

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_rcu_qsbr.h>
#include <rte_seqlock.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "control/index_layout.hpp"
#include "control/replay_window.hpp"
#include "crypto/keys.hpp"
#include "dataplane/allowed_ips.hpp"
#include "dataplane/headers.hpp"

namespace meshgate::dataplane {

// Permissions a peer holds (DESIGN.md, "Exit node defaults"). None by default.
enum Permission : std::uint8_t {
    permission_exit = 1 << 0,
    permission_lan = 1 << 1,
    permission_peers = 1 << 2,
};

// Two cache lines per packet, whichever way it goes: the keys, then every scalar a worker
// reads or writes (the replay window's scalars end that line, its bitmap follows). Decap
// touches both and one bitmap word; encap both. At 100,000 peers these lines miss the cache,
// so their count is the cost (pipeline_bench, /100000 against /1000).
struct alignas(64) Keypair {
    // ---- immutable once published; written by the control thread before the hash add ----
    std::array<std::uint8_t, 32> receive_key{};
    std::array<std::uint8_t, 32> send_key{};
    std::uint32_t local_index = 0;   // the index peers put in messages to us
    std::uint32_t remote_index = 0;  // the index we put in messages to the peer
    PeerId peer = no_peer;
    std::uint64_t reject_after_tsc = 0;  // birth + REJECT_AFTER_TIME, in TSC cycles
    bool initiator = false;

    // ---- owner worker only ----
    std::uint64_t send_counter = 0;

    // ---- owner worker writes (once), control thread reads ----
    // The responder's new keypair may only send after it has received (whitepaper §5.4.7).
    std::atomic<bool> received_data{false};

    // ---- owner worker only ----
    control::ReplayWindow replay;

    ~Keypair();
};

// Where a peer is reached on the WAN: its UDP endpoint and the MAC to send to (the peer's,
// or the router's). Set by configuration and ARP/ND (control thread) or by roaming (owner).
struct EndpointRecord {
    Endpoint endpoint;
    rte_ether_addr mac{};
    bool known = false;
};

struct PeerCounters {
    std::uint64_t rx_packets = 0, rx_bytes = 0;
    std::uint64_t tx_packets = 0, tx_bytes = 0;
    // The control thread reads these to drive the protocol timers (DataplaneActivity): any
    // authenticated packet, and packets that carried data (not keepalives).
    std::uint64_t last_rx_tsc = 0, last_tx_tsc = 0;
    std::uint64_t last_data_rx_tsc = 0, last_data_tx_tsc = 0;
};

// Laid out for the data path: everything decap, route and encap read per packet (keypair
// pointers, owner, permissions, the endpoint) in the first cache line, the counters they
// write in the second; what only the control thread and the flow log read comes after.
struct alignas(64) PeerSlot {
    // ---- writer: control thread; readers: workers ----
    std::atomic<Keypair*> current{nullptr};  // send with this (if its peer has confirmed it)
    std::atomic<Keypair*> next{nullptr};     // responder keypair waiting for confirmation
    std::atomic<bool> configured{false};
    std::uint16_t owner = 0;
    std::uint8_t permissions = 0;

    // ---- writers: the owner worker (roaming) and the control thread, seqlock-serialised ----
    rte_seqlock_t endpoint_lock;
    EndpointRecord endpoint;

    // ---- owner worker only; the control thread reads racily (monotonic statistics) ----
    alignas(64) PeerCounters counters;

    // ---- writer: control thread, before the slot is marked configured; read by the flow
    // log (cold) ----
    crypto::PublicKey public_key{};

    PeerSlot() { rte_seqlock_init(&endpoint_lock); }
    // Inline: encap and decap read it for every packet.
    EndpointRecord read_endpoint() const {
        EndpointRecord copy;
        std::uint32_t sequence;
        do {
            sequence = rte_seqlock_read_begin(&endpoint_lock);
            copy = endpoint;
        } while (rte_seqlock_read_retry(&endpoint_lock, sequence));
        return copy;
    }
    void write_endpoint(const EndpointRecord& record);
};

class SessionTable {
  public:
    // `rcu` may be null when nothing reads concurrently (tests).
    SessionTable(const char* name, std::uint32_t capacity, rte_rcu_qsbr* rcu);
    ~SessionTable();
    SessionTable(const SessionTable&) = delete;
    SessionTable& operator=(const SessionTable&) = delete;

    // ---- control thread ----
    // Takes ownership. False (keypair destroyed) when the index exists or the table is full.
    bool publish(std::unique_ptr<Keypair> keypair);
    // Removes, waits out readers, wipes and frees. No-op for an unknown index.
    void retire(std::uint32_t local_index);
    std::uint32_t size() const;

    // ---- workers ----
    // indexes[i] -> keypairs[i] (nullptr when unknown).
    void lookup(const std::uint32_t* indexes, Keypair** keypairs, unsigned count) const;

  private:
    rte_hash* hash_;
    rte_rcu_qsbr* rcu_;
};

}  // namespace meshgate::dataplane
