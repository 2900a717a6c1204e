// Route: decides where each authenticated inner packet goes.
//
//   to a gateway tunnel address, ICMP echo request  -> echo reply, back to the sender
//   inside another peer's allowed IPs               -> that peer, if both hold `peers`;
//                                                      TTL run out, or too big for the
//                                                      tunnel and DF set (or IPv6): an ICMP
//                                                      error back to the sender, as a router
//   anything else                                   -> exit_outbound (exit_path.hpp):
//                                                      the uplink; without one, "host
//                                                      unreachable" back to the sender
//
// Packets leaving for a peer get packet_meta() = {destination, encap}; those whose
// destination is owned by another worker are handed to it, the rest stay in the burst for
// this worker's encap. Worker lcore only.
#pragma once

#include <rte_ip.h>

#include "dataplane/burst.hpp"
#include "dataplane/context.hpp"
#include "dataplane/icmp_error.hpp"

namespace meshgate::dataplane {

std::uint16_t route(Burst<>& inner, WorkerContext& worker);

// Turns an ICMP (v4) or ICMPv6 echo request addressed to `self` into its reply in place.
// False when the packet is not such a request. `destination` is destination_of(packet),
// which the caller has already read.
bool answer_echo(rte_mbuf* packet, const IpAddress& destination, const GatewayAddresses& self);

// The same, for a request whose destination the caller has already found to be the gateway's
// own (the uplink address, on the exit path).
bool answer_echo_request(rte_mbuf* packet);

// Whether the packet may go on to a link of `mtu` bytes: it fits, or a router may split it to
// fit (IPv4 without "don't fragment"; IPv6 routers never fragment, RFC 8200 §5). Otherwise its
// sender is owed "fragmentation needed" / "packet too big". Inline, as the two below: route
// and the exit path ask for every packet.
inline bool fits_or_may_split(const rte_mbuf* packet, std::uint32_t mtu) {
    return rte_pktmbuf_data_len(packet) <= mtu ||
           (!is_ipv6_packet(packet) &&
            (rte_pktmbuf_mtod(packet, const rte_ipv4_hdr*)->fragment_offset &
             rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG)) == 0);
}

// The gateway's own ICMP errors (icmp_error.hpp), within the worker's ICMP rate.
//
// become_icmp_error turns the packet into the ICMP error about it, from `source`, or frees it
// (also when the rate is spent). Counted under `reason` either way: the original packet did
// not go on. True: the error is ready to send, to the packet's source.
bool become_icmp_error(rte_mbuf* packet, IcmpError kind, Drop reason, WorkerContext& worker,
                       std::uint32_t mtu, std::uint64_t now,
                       const std::optional<IpAddress>& source);
// The same for a packet a peer sent, from the gateway's tunnel address of its family: true
// when it is now the error, to be sealed back to that peer (packet_meta().peer).
bool answer_sender_with_error(rte_mbuf* packet, IcmpError kind, Drop reason, WorkerContext& worker,
                              std::uint32_t mtu, std::uint64_t now);

// The destination of an inner IPv4 or IPv6 packet (data at the IP header).
inline IpAddress destination_of(const rte_mbuf* packet) {
    if (is_ipv6_packet(packet)) {
        return IpAddress::v6(rte_pktmbuf_mtod(packet, const rte_ipv6_hdr*)->dst_addr);
    }
    return IpAddress::v4(rte_pktmbuf_mtod(packet, const rte_ipv4_hdr*)->dst_addr);
}

// A router decrements TTL (IPv4, with an incremental checksum update, RFC 1624) or the hop
// limit (IPv6). False, the packet untouched, when it has run out.
inline bool decrement_ttl(rte_mbuf* packet) {
    if (is_ipv6_packet(packet)) {
        auto* ip = rte_pktmbuf_mtod(packet, rte_ipv6_hdr*);
        if (ip->hop_limits <= 1) {
            return false;
        }
        ip->hop_limits--;
        return true;
    }
    auto* ip = rte_pktmbuf_mtod(packet, rte_ipv4_hdr*);
    if (ip->time_to_live <= 1) {
        return false;
    }
    ip->time_to_live--;
    // TTL is the high byte of its 16-bit word: the sum grows by 0x0100.
    std::uint32_t sum = network_to_host16(ip->hdr_checksum) + 0x0100u;
    sum = (sum & 0xFFFF) + (sum >> 16);
    ip->hdr_checksum = host_to_network16(static_cast<std::uint16_t>(sum));
    return true;
}

}  // namespace meshgate::dataplane
