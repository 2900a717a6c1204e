// Allowed IPs: inner prefix -> peer, the one structure that answers both questions the
// whitepaper asks of it (§4): "which peer does this destination go to?" (TX) and "may this
// peer send from this source?" (RX anti-spoofing).
//
// Workers look up with DPDK's rte_fib (DIR24_8, IPv4) and rte_fib6 (trie, IPv6), a burst at
// a time. The control thread is the only writer. It keeps two copies of each table: a change
// goes into the standby copy, the copies swap with one atomic pointer store, the writer waits
// (RCU, rte_rcu_qsbr) until every worker has passed a quiescent state, then replays the change
// into the copy that is now standby. Workers therefore never see a half-applied change and
// never wait; the control thread waits about one worker loop per batch of changes.
#pragma once

#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "dataplane/headers.hpp"

namespace meshgate::dataplane {

using PeerId = std::uint32_t;
// DIR24_8 keeps one bit of each 4-byte next hop for itself.
inline constexpr PeerId no_peer = 0x7FFFFFFF;

struct Prefix {
    IpAddress address;  // host bits beyond `length` are zero (canonical)
    std::uint8_t length = 0;
    auto operator<=>(const Prefix& other) const {
        if (auto c = address.is_v6 <=> other.address.is_v6; c != 0) {
            return c;
        }
        if (auto c = address.bytes <=> other.address.bytes; c != 0) {
            return c;
        }
        return length <=> other.length;
    }
    bool operator==(const Prefix&) const = default;
};

// Zeroes the host bits, so 10.0.0.7/24 becomes 10.0.0.0/24.
Prefix canonical(Prefix prefix);

struct AllowedIpChange {
    Prefix prefix;
    PeerId peer = no_peer;  // no_peer: remove the prefix
};

class AllowedIps {
  public:
    struct Limits {
        int max_v4_routes = 1 << 18;
        int max_v6_routes = 1 << 18;
        std::uint32_t v4_tbl8_groups = 1 << 12;
        std::uint32_t v6_tbl8_groups = 1 << 14;
    };

    // `rcu` may be null when nothing reads concurrently (tests, `meshgate check`).
    AllowedIps(const std::string& name, rte_rcu_qsbr* rcu, Limits limits);
    AllowedIps(const std::string& name, rte_rcu_qsbr* rcu) : AllowedIps(name, rcu, Limits{}) {}
    ~AllowedIps();
    AllowedIps(const AllowedIps&) = delete;
    AllowedIps& operator=(const AllowedIps&) = delete;

    // ---- control thread only -------------------------------------------------------------
    // Applies all changes, or none (false: a table is full; both copies are left as before).
    bool apply(std::span<const AllowedIpChange> changes);
    // Removes every prefix of `peer` (peer removed from the configuration).
    bool remove_peer(PeerId peer);
    std::vector<Prefix> prefixes_of(PeerId peer) const;
    std::size_t size() const { return routes_.size(); }

    // ---- workers (any lcore, lock-free) --------------------------------------------------
    // addresses_host_order[i] -> peers[i] (no_peer when nothing matches).
    void lookup_v4(const std::uint32_t* addresses_host_order, PeerId* peers, unsigned count) const;
    void lookup_v6(const std::uint8_t (*addresses)[16], PeerId* peers, unsigned count) const;
    PeerId lookup(const IpAddress& address) const;
    // A burst of mixed IPv4/IPv6 addresses: one bulk lookup per family.
    void lookup_burst(const IpAddress* addresses, PeerId* peers, unsigned count) const;

  private:
    struct Copy {
        rte_fib* v4 = nullptr;
        rte_fib6* v6 = nullptr;
    };
    bool write(Copy& copy, const AllowedIpChange& change) const;
    bool write_all(Copy& copy, std::span<const AllowedIpChange> changes) const;
    void wait_for_readers() const;

    Copy copies_[2];
    // writer: control thread; readers: workers. Index of the copy workers read.
    std::atomic<unsigned> active_{0};
    rte_rcu_qsbr* rcu_;
    // The authoritative list, control thread only: what both copies must hold.
    std::map<Prefix, PeerId> routes_;
};

}  // namespace meshgate::dataplane
