// Route: decides where each authenticated inner packet goes.
//
//   to a gateway tunnel address, ICMP echo request  -> echo reply, back to the sender
//   inside another peer's allowed IPs               -> that peer, if both hold `peers`
//   anything else                                   -> exit_outbound (exit_path.hpp):
//                                                      the uplink, or dropped
//
// Packets leaving for a peer get packet_meta() = {destination, encap}; those whose
// destination is owned by another worker are handed to it, the rest stay in the burst for
// this worker's encap. Worker lcore only.
#pragma once

#include "dataplane/burst.hpp"
#include "dataplane/context.hpp"

namespace meshgate::dataplane {

std::uint16_t route(Burst<>& inner, WorkerContext& worker);

// Turns an ICMP (v4) or ICMPv6 echo request addressed to `self` into its reply in place.
// False when the packet is not such a request. `destination` is destination_of(packet),
// which the caller has already read.
bool answer_echo(rte_mbuf* packet, const IpAddress& destination, const GatewayAddresses& self);

// The same, for a request whose destination the caller has already found to be the gateway's
// own (the uplink address, on the exit path).
bool answer_echo_request(rte_mbuf* packet);

// The destination of an inner IPv4 or IPv6 packet (data at the IP header).
IpAddress destination_of(const rte_mbuf* packet);

// A router decrements TTL (IPv4, with an incremental checksum update, RFC 1624) or the hop
// limit (IPv6). False, the packet untouched, when it has run out.
bool decrement_ttl(rte_mbuf* packet);

}  // namespace meshgate::dataplane
