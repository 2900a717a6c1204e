// ICMP errors the gateway itself sends back through the tunnel, about a peer's packet it will
// not forward: fragmentation needed / packet too big (the uplink's MTU is smaller than the
// packet and it may not be fragmented: path MTU discovery, RFC 1191 and RFC 8201) and time
// exceeded (the TTL or hop limit ran out here: traceroute's first hop).
//
// The error is built in place, in front of the offending packet's own bytes: the packet
// becomes the quote (cut to what RFC 1812 §4.3.2.3 and RFC 4443 §2.4(c) allow), and new IP
// and ICMP headers go into the mbuf's headroom, which decap left holding the outer headers.
// No allocation; any lcore.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <optional>

#include "dataplane/headers.hpp"

namespace meshgate::dataplane {

enum class IcmpError : std::uint8_t {
    too_big,        // ICMP 3/4 "fragmentation needed" (with the MTU), ICMPv6 2 "packet too big"
    time_exceeded,  // ICMP 11/0, ICMPv6 3/0 "hop limit exceeded in transit"
};

// The total size of an ICMP error: IPv4 errors stay within 576 bytes, ICMPv6 errors within
// the minimum IPv6 MTU.
inline constexpr std::uint32_t icmp_error_max_v4 = 576;
inline constexpr std::uint32_t icmp_error_max_v6 = 1280;

// Turns `packet` (one segment, data at an inner IPv4 or IPv6 header) into the ICMP error about
// it, sent from `source` (the gateway's tunnel address of the packet's family) to the
// packet's source. `mtu` is reported by too_big. Returns false, leaving the packet as it was,
// when no error may or can be sent: `source` missing or of the other family, the packet is
// itself an ICMP error (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)) or a non-first fragment, or the
// mbuf lacks headroom. The caller then drops the packet.
bool make_icmp_error(rte_mbuf* packet, IcmpError kind, std::uint32_t mtu,
                     const std::optional<IpAddress>& source);

}  // namespace meshgate::dataplane
