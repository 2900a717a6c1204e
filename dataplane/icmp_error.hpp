// ICMP errors the gateway itself sends back through the tunnel, about a peer's packet it will
// not forward: fragmentation needed / packet too big (the uplink's MTU is smaller than the
// packet and it may not be fragmented: path MTU discovery, RFC 1191 and RFC 8201), time
// exceeded (the TTL or hop limit ran out here: traceroute's first hop), and host / address
// unreachable (no peer and no uplink for the destination, as kernel WireGuard answers a
// packet for which it has no peer: the sender fails at once instead of timing out).
//
// The error is built in place, in front of the offending packet's own bytes: the packet
// becomes the quote (cut to what RFC 1812 §4.3.2.3 and RFC 4443 §2.4(c) allow), and new IP
// and ICMP headers go into the mbuf's headroom, which decap left holding the outer headers.
// No allocation; any lcore.
#pragma once

#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "dataplane/headers.hpp"

namespace meshgate::dataplane {

enum class IcmpError : std::uint8_t {
    too_big,        // ICMP 3/4 "fragmentation needed" (with the MTU), ICMPv6 2 "packet too big"
    time_exceeded,  // ICMP 11/0, ICMPv6 3/0 "hop limit exceeded in transit"
    unreachable,    // ICMP 3/1 "host unreachable", ICMPv6 1/3 "address unreachable"
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

// How many ICMP errors a worker may send: a token bucket, as RFC 4443 §2.4(f) requires for
// ICMPv6 and RFC 1812 §4.3.2.8 asks of IPv4 routers. Without it a peer turns every packet it
// sends with TTL 1, or too big for the uplink, into one the gateway builds and seals back:
// work at the peer's rate, for the gateway. Traceroute and path MTU discovery need a few a
// second. The defaults are Linux's (net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst), per
// worker here. Kept as a theoretical arrival time (GCRA): one integer, no refill loop.
//
// Ownership: one per worker (WorkerContext), used by that worker only.
class IcmpErrorLimiter {
  public:
    static constexpr std::uint32_t default_per_second = 1000;
    static constexpr std::uint32_t default_burst = 50;

    explicit IcmpErrorLimiter(std::uint64_t tsc_hz, std::uint32_t per_second = default_per_second,
                              std::uint32_t burst = default_burst)
        : ticks_per_error_(std::max<std::uint64_t>(tsc_hz / per_second, 1)),
          burst_ticks_(ticks_per_error_ * burst) {}

    // True when one more error may be sent at TSC time `now_tsc` (monotonic); takes it.
    bool allow(std::uint64_t now_tsc) {
        const std::uint64_t due = std::max(next_due_, now_tsc) + ticks_per_error_;
        if (due - now_tsc > burst_ticks_) {
            return false;
        }
        next_due_ = due;
        return true;
    }

  private:
    std::uint64_t ticks_per_error_;
    std::uint64_t burst_ticks_;
    // The TSC time by which every error sent so far is paid for: the bucket is full from then.
    std::uint64_t next_due_ = 0;
};

}  // namespace meshgate::dataplane
