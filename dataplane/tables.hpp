// The tables workers read and the control thread writes (DESIGN.md, "Tables").
//
//   sessions   receiver index -> Keypair      array indexed by the index's slot bits,
//                                             lock-free readers, RCU-deferred free
//   peers      PeerId -> PeerSlot             fixed array; fields tagged with their writer
//
// Publication rule: the control thread fills a Keypair completely, then stores it in its
// session slot (a release); a worker that finds it sees every field. Removal: the control
// thread empties the slot, waits for every worker's quiescent state (rte_rcu_qsbr), and only
// then wipes and frees the keypair. Workers never wait and never lock.
#pragma once

#include <rte_ether.h>
#include <rte_prefetch.h>
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

// One cache line per packet for each direction, and a replay bitmap word for decap: decap
// reads the first line (the receive key and every scalar it checks or writes, the replay
// window's scalar last) and one word of the bitmap that follows it; encap reads and writes
// the line after the bitmap (the send key, the remote index, the counter). At 100,000 peers
// these lines miss the cache, so their count is the cost (pipeline_bench, /100000 against
// /1000); they were two lines a direction before (keys, then scalars).
struct alignas(64) Keypair {
    // ---- decap's line ----
    // Immutable once published; written by the control thread before the session table add.
    std::array<std::uint8_t, 32> receive_key{};
    std::uint64_t reject_after_tsc = 0;  // birth + REJECT_AFTER_TIME, in TSC cycles
    PeerId peer = no_peer;
    // Owner worker writes (once), control thread and encap read. The responder's new keypair
    // may only send after it has received (whitepaper §5.4.7).
    std::atomic<bool> received_data{false};
    // Owner worker only. Its two scalars end this line (all a counter in order touches); its
    // bitmap follows.
    control::ReplayWindow replay;

    // ---- encap's line ----
    // Immutable once published, as above; `send_reject_after_tsc` is reject_after_tsc again,
    // so that encap's expiry check reads this line only (set both with expire_at()).
    alignas(64) std::array<std::uint8_t, 32> send_key{};
    std::uint64_t send_reject_after_tsc = 0;
    std::uint32_t remote_index = 0;  // the index we put in messages to the peer
    bool initiator = false;
    // Owner worker only.
    std::uint64_t send_counter = 0;

    // Control thread, before publication; no worker reads it (the session table keeps its
    // own copy of the index).
    std::uint32_t local_index = 0;  // the index peers put in messages to us

    // Control thread, before publication.
    void expire_at(std::uint64_t tsc) { reject_after_tsc = send_reject_after_tsc = tsc; }

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
// pointers, owner, permissions, the endpoint) in the first cache line, the outer headers
// encap copies in the second, the counters decap and encap write in the third; what only the
// control thread and the flow log read comes after.
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

    // ---- writer: control thread (record_host_addresses()); reader: decap ----
    // An IPv4 /32 among the peer's allowed IPs that the allowed-IPs table resolves to this
    // peer (network order; 0: none). An inner source equal to it passes the anti-spoofing
    // check without a lookup: no prefix is more specific than a /32, so the lookup could only
    // name this peer. Most peers' only IPv4 address is such a /32.
    std::atomic<std::uint32_t> host_ipv4{0};
    // The headers encap puts in front of every message to `endpoint` (headers.hpp).
    OuterTemplate outer;

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
    // True when the recorded endpoint is `endpoint`, reached through `mac`. Compared in place:
    // copying the record out (read_endpoint) and comparing the copy stalled on store-to-load
    // forwarding, its 28 bytes written by two overlapping stores (perf annotate of decap,
    // hub/64/1000). Inline: decap asks for every authenticated packet (roaming).
    bool endpoint_is(const Endpoint& where, const rte_ether_addr& mac) const {
        bool same;
        std::uint32_t sequence;
        do {
            sequence = rte_seqlock_read_begin(&endpoint_lock);
            same = endpoint.known && endpoint.endpoint == where &&
                   rte_is_same_ether_addr(&endpoint.mac, &mac);
        } while (rte_seqlock_read_retry(&endpoint_lock, sequence));
        return same;
    }
    // The outer headers to the endpoint, as registers (encap, every packet).
    LoadedOuter load_outer() const {
        LoadedOuter loaded;
        std::uint32_t sequence;
        do {
            sequence = rte_seqlock_read_begin(&endpoint_lock);
            loaded = dataplane::load_outer(outer);
        } while (rte_seqlock_read_retry(&endpoint_lock, sequence));
        return loaded;
    }
    // The record and the headers built for it (set_peer_endpoint(), encap.hpp), together.
    void write_endpoint(const EndpointRecord& record, const OuterTemplate& headers);
};

// After `routes` have been applied to `table`: gives each peer they name its first IPv4 /32
// that `table` resolves to it (PeerSlot::host_ipv4). Control thread, at start-up: nothing
// removes a route while the gateway runs. Whatever comes to change a peer's allowed IPs live
// must clear host_ipv4 (and wait out the workers) before it removes or moves that /32.
void record_host_addresses(PeerSlot* peers, const AllowedIps& table,
                           const std::vector<AllowedIpChange>& routes);

// Receiver index -> keypair, for the workers. The index's slot bits (control::IndexLayout)
// pick the entry directly: one cache line per packet, where a hash table read a bucket line
// and then a key line. The control thread's IndexTable never lets two live indexes share a
// slot; each entry keeps its full index, so a stale index whose slot has a new holder misses
// without the keypair being touched.
class SessionTable {
  public:
    // 2^slot_bits entries, allocated here once. `rcu` may be null when nothing reads
    // concurrently (tests). Throws std::runtime_error when the memory cannot be had.
    SessionTable(const char* name, control::IndexLayout layout, rte_rcu_qsbr* rcu);
    ~SessionTable();
    SessionTable(const SessionTable&) = delete;
    SessionTable& operator=(const SessionTable&) = delete;

    // ---- control thread ----
    // Takes ownership. False (keypair destroyed) for index zero, or when its slot is taken, by
    // the same index or another: a bug, or an index allocated with a different layout.
    bool publish(std::unique_ptr<Keypair> keypair);
    // Empties the slot, waits out readers, wipes and frees. No-op unless `local_index` is the
    // index published in its slot.
    void retire(std::uint32_t local_index);
    // Whether the slot `index` maps to holds a keypair, whichever index it was published with.
    bool slot_taken(std::uint32_t index) const;
    std::uint32_t size() const { return size_; }

    // ---- workers ----
    // Starts loading the entry `index` maps to: decap asks for a whole burst's entries first,
    // so that their misses overlap, and reads them (find) a pass later.
    void prefetch(std::uint32_t index) const { rte_prefetch0(&entry_of(index)); }
    // The keypair published under `index`, or nullptr. The full index is compared, not only
    // the slot: packets for a retired index must miss.
    Keypair* find(std::uint32_t index) const {
        const Entry& entry = entry_of(index);
        Keypair* keypair = entry.keypair.load(std::memory_order_acquire);
        return entry.index.load(std::memory_order_relaxed) == index ? keypair : nullptr;
    }
    // indexes[i] -> keypairs[i] (nullptr when unknown).
    void lookup(const std::uint32_t* indexes, Keypair** keypairs, unsigned count) const;

  private:
    // Writer: control thread. Readers: workers, which load `keypair` (acquire) and then
    // `index`. Publication stores the index first and the keypair last (release), so a reader
    // that sees the keypair sees its index; retirement empties `keypair` and waits a grace
    // period before the slot can take a new index, so no reader pairs one keypair with
    // another's index. Four entries per cache line.
    struct alignas(16) Entry {
        std::atomic<std::uint32_t> index{0};
        std::atomic<Keypair*> keypair{nullptr};
    };
    static_assert(sizeof(Entry) == 16);

    // The entry `index` maps to: every reader and writer finds it the one way.
    Entry& entry_of(std::uint32_t index) const { return entries_[slots_.slot_of(index)]; }

    control::IndexLayout layout_;
    control::IndexLayout::SlotDecoder slots_;  // layout_'s, worked out once for entry_of()
    Entry* entries_ = nullptr;                 // layout_.slot_count() of them, cache-line aligned
    rte_rcu_qsbr* rcu_;
    std::uint32_t size_ = 0;  // control thread only
};

}  // namespace meshgate::dataplane
