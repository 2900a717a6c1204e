// Encap: inner IP packets for a peer in, WireGuard transport data on the wire out.
//
//   choose the keypair (current; or the responder's next once the peer has used it)
//        │  none usable? the packet goes to the control thread, which stages it and
//        │  starts a handshake
//   counter (owner worker: no atomics), pad to 16 bytes, transport header, room for the tag
//        │
//   seal_batch (one call for the burst)
//        │
//   Ethernet/IP/UDP to the peer's endpoint, copied from the headers built when the endpoint
//   was set (PeerSlot::outer); lengths and checksum filled in; TX
//
// Every packet here has packet_meta().peer = its destination and is owned by this worker.
#pragma once

#include <rte_prefetch.h>

#include <span>

#include "crypto/paced_prefetch.hpp"
#include "dataplane/burst.hpp"
#include "dataplane/context.hpp"

namespace meshgate::dataplane {

// Seals what can be sealed; leaves the wire-ready frames in `outgoing` (for TX) and returns
// their number. Other packets are dropped (counted) or passed to the control thread.
// `upcoming`: what this worker seals next (the exit path's next uplink burst), fetched while
// the seal computes (crypto/paced_prefetch.hpp).
std::uint16_t encap(Burst<>& outgoing, WorkerContext& worker,
                    std::span<const crypto::PrefetchRange> upcoming = {});

// Transmits the burst on the worker's queue; frees and counts what the queue refused.
void transmit(Burst<>& frames, WorkerContext& worker);
// The same on any port and queue this worker owns (the uplink's).
void transmit_on(Burst<>& frames, std::uint16_t port, std::uint16_t queue,
                 WorkerCounters& counters);

// Records where `peer` is reached, and builds the outer headers encap will copy for it from
// `self`'s WAN addresses. Callers: the owner worker (roaming) and the control thread.
void set_peer_endpoint(PeerSlot& peer, const EndpointRecord& record, const GatewayAddresses& self);

// The keypair a worker sends with now, or nullptr (no session, or it expired).
Keypair* sending_keypair(const PeerSlot& peer, std::uint64_t now_tsc);

// Starts loading the lines encap reads from `peer` before the seal: its keypairs' (the send
// key, and the scalars: expiry, remote index, counter), the outer headers and the counters.
// Reads the slot's keypair pointers, so call it once the slot itself has had time to arrive.
// Encap does this itself a few packets ahead of use; a stage that knows the destination
// earlier (exit_in, route) calls it sooner. Inline, as those stages call it for every packet.
inline void prefetch_sending_lines(const PeerSlot& peer) {
    const auto prefetch = [](const Keypair* keypair) {
        if (keypair != nullptr) {
            rte_prefetch0(keypair->send_key.data());
        }
    };
    prefetch(peer.next.load(std::memory_order_acquire));
    prefetch(peer.current.load(std::memory_order_acquire));
    rte_prefetch0(&peer.outer);
    rte_prefetch0(&peer.counters);
}

}  // namespace meshgate::dataplane
