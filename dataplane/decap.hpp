// Decap: WireGuard transport data in, authenticated inner IP packets out.
//
//   receiver index lookup ─► not ours? hand off to the owner worker
//        │
//   expiry + replay pre-check (cheap, before any crypto)
//        │
//   open_batch (one call for the burst)
//        │
//   replay check again and update (only now: a forged counter never moves the window)
//   roam the endpoint, count, mark the keypair as having received
//        │
//   strip headers; keepalives end here; inner IPv4/IPv6 sanity; source in the peer's
//   allowed IPs (anti-spoofing: the peer's own /32 at once, other sources by lookup)
//        │
//   kept packets carry packet_meta().peer = the sending peer, for route
//
// Runs on a worker lcore. Every packet it does not keep is dropped (counted) or handed off.
#pragma once

#include "dataplane/burst.hpp"
#include "dataplane/context.hpp"

namespace meshgate::dataplane {

// `received` holds type-4 messages as classify left them (l2/l3/l4_len set). On return it
// holds the inner IP packets (data starts at the IP header) that route should see.
// `from_handoff`: these packets were handed to us by another worker (never hand them on).
std::uint16_t decap(Burst<>& received, WorkerContext& worker, bool from_handoff);

}  // namespace meshgate::dataplane
