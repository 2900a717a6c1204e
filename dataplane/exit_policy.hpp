// Exit policy: where a peer's decrypted packet may go (DESIGN.md, "Exit node defaults").
//
//   to the gateway itself     always (route() answers echo on the tunnel addresses)
//   to another peer           route()'s check: both ends hold `peers`
//   to the uplink             `exit`; and `lan` too when the destination is local
//
// "Local" is what a guest on someone's wifi must not reach: private, shared, link-local,
// loopback, multicast and unique-local ranges, and every subnet attached to the gateway.
// That is the liability of running an exit for others: a traveller may browse the internet
// from the gateway's address, but not the printer, the router's admin page or the cloud
// metadata address (169.254.169.254) behind it.
//
// Workers call is_local() / exit_verdict() per packet: no allocation, no locks. Most
// destinations are public, and are answered by one bit test on the address's first byte;
// the rest scan a few dozen precomputed (network, mask) pairs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "config/config.hpp"
#include "dataplane/allowed_ips.hpp"
#include "dataplane/headers.hpp"
#include "dataplane/tables.hpp"

namespace meshgate::dataplane {

// The fixed local ranges plus the gateway's attached subnets, as (network, mask) pairs.
// Built by the control thread before workers launch; read-only afterwards, so any worker
// may read it without synchronisation.
class LocalDestinations {
  public:
    // Attached subnets per address family: ports and tunnel addresses, a handful in practice.
    static constexpr std::size_t max_attached = 16;

    // `attached`: the gateway's own subnets (host bits may be set; they are ignored).
    // `builtin` false leaves the fixed guest-wifi ranges out: just `attached` (the exit path
    // uses that for the tunnel subnets). Cold path: throws std::length_error past
    // max_attached of one family.
    explicit LocalDestinations(std::span<const Prefix> attached = {}, bool builtin = true);

    bool is_local(const IpAddress& destination) const {
        return destination.is_v6 ? is_local_v6(destination)
                                 : is_local_v4(destination.v4_host_order());
    }

  private:
    struct RangeV4 {
        std::uint32_t network = 0;  // host byte order, masked
        std::uint32_t mask = 0;
    };
    struct RangeV6 {
        std::uint64_t network_high = 0, network_low = 0;  // host byte order, masked
        std::uint64_t mask_high = 0, mask_low = 0;
    };
    static constexpr std::size_t builtin_v4 = 9;
    static constexpr std::size_t builtin_v6 = 5;

    // One bit per value of an address's first byte: set when some range may hold an address
    // starting with it. A clear bit answers "not local" without the scan (a profile of
    // exit_out/64/1000 had the two scans per packet at 98 instructions).
    class FirstBytes {
      public:
        // Marks the first bytes of every address in the range whose first byte is `first`
        // under the prefix length `length`.
        void mark(std::uint8_t first, unsigned length);
        bool may_hold(std::uint8_t first) const { return (bits_[first >> 6] >> (first & 63)) & 1; }

      private:
        std::array<std::uint64_t, 4> bits_{};
    };

    // Inline, the first byte's test: the exit path asks twice a packet, and public addresses
    // (nearly all) need nothing more.
    bool is_local_v4(std::uint32_t address) const {
        return v4_first_.may_hold(static_cast<std::uint8_t>(address >> 24)) &&
               in_v4_ranges(address);
    }
    bool is_local_v6(const IpAddress& address) const {
        return v6_first_.may_hold(address.bytes[0]) && in_v6_ranges(address);
    }
    bool in_v4_ranges(std::uint32_t address) const;
    bool in_v6_ranges(const IpAddress& address) const;
    void add(const Prefix& prefix);

    std::array<RangeV4, builtin_v4 + max_attached> v4_{};
    std::array<RangeV6, builtin_v6 + max_attached> v6_{};
    FirstBytes v4_first_;
    FirstBytes v6_first_;  // with 0x00 marked whenever there are IPv4 ranges (IPv4-mapped)
    std::size_t v4_count_ = 0;
    std::size_t v6_count_ = 0;
};

// The gateway's attached subnets from its configuration: every port's address and
// address6, and the tunnel addresses (a tunnel address not in any peer's allowed IPs must
// not fall through to the uplink). Cold path.
std::vector<Prefix> attached_subnets(const config::Config& config);

// Where route() found a decrypted packet's destination.
enum class Destination : std::uint8_t {
    gateway,  // one of the gateway's own tunnel addresses
    peer,     // inside another peer's allowed IPs
    uplink,   // anything else: the internet, through the uplink port
};

enum class ExitVerdict : std::uint8_t {
    allowed,                  // gateway or uplink: go on
    peer_check,               // another peer: route()'s `peers` check on both ends decides
    refused_no_exit,          // uplink, but the peer lacks `exit`
    refused_local_needs_lan,  // uplink to a local destination, and the peer lacks `lan`
};

// The source peer's `permissions` (Permission bits of its PeerSlot) against where its packet
// goes. The local classification is consulted only for the uplink and only when the peer
// lacks `lan`.
inline ExitVerdict exit_verdict(std::uint8_t permissions, Destination where,
                                const IpAddress& destination, const LocalDestinations& local) {
    switch (where) {
        case Destination::gateway:
            return ExitVerdict::allowed;
        case Destination::peer:
            return ExitVerdict::peer_check;
        case Destination::uplink:
            break;
    }
    if ((permissions & permission_exit) == 0) {
        return ExitVerdict::refused_no_exit;
    }
    if ((permissions & permission_lan) == 0 && local.is_local(destination)) {
        return ExitVerdict::refused_local_needs_lan;
    }
    return ExitVerdict::allowed;
}

// Per-peer exit statistics. Written only by the peer's owner worker (plain increments, no
// atomics); the control thread reads racily for `meshgate show` and metrics, which is fine
// for monotonic 64-bit counters on x86-64 (as WorkerCounters).
struct alignas(64) ExitCounters {
    std::uint64_t packets_out = 0, bytes_out = 0;  // from the peer, out through the uplink
    std::uint64_t packets_in = 0, bytes_in = 0;    // from the uplink, back to the peer
    std::uint64_t refused_no_exit = 0;
    std::uint64_t refused_local_needs_lan = 0;
    std::uint64_t rate_limited_ingress = 0;  // from the peer, over its ingress limit
    std::uint64_t rate_limited_egress = 0;   // to the peer, over its egress limit

    // Counts a refusal; allowed and peer_check verdicts count nothing here.
    void count(ExitVerdict verdict) {
        refused_no_exit += verdict == ExitVerdict::refused_no_exit;
        refused_local_needs_lan += verdict == ExitVerdict::refused_local_needs_lan;
    }
};
static_assert(sizeof(ExitCounters) == 64, "one cache line per peer");

}  // namespace meshgate::dataplane
