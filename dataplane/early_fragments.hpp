// Later fragments that arrived from the uplink before their datagram's first fragment.
//
// NAT translates a later fragment as its first fragment was (fragment_map.hpp): without the
// first it has no port, so no flow and no owner worker. Senders emit fragments in order, but
// the internet reorders them: a router hashing on ports (ECMP) sends a datagram's first
// fragment, which has them, and its later ones, which do not, down different paths. So the
// steering thread holds such a fragment here for a short while; when the first fragment comes
// it releases the held ones right behind it. Kernel conntrack reassembles instead; holding a
// few mbufs, unmodified, is enough for a translator that never reassembles.
//
// Bounded: a handful of slots, each held at most `lifetime` ticks. When all are taken the oldest
// makes room; whatever leaves unclaimed is the caller's to drop (nat_fragment), as before.
//
// Writer and reader: the one thread steering an uplink RX queue (a worker, or the control
// thread for its queue). Not shared.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>

#include "dataplane/fragment_map.hpp"

namespace meshgate::dataplane {

class EarlyFragments {
  public:
    // Few: datagrams reordered past their first fragment are rare, and each slot pins an mbuf.
    static constexpr unsigned capacity = 16;

    explicit EarlyFragments(std::uint64_t lifetime_ticks) : lifetime_(lifetime_ticks) {}
    EarlyFragments(const EarlyFragments&) = delete;
    EarlyFragments& operator=(const EarlyFragments&) = delete;
    ~EarlyFragments();  // frees what is still held

    // Holds `packet`, a later fragment of `key`'s datagram. Returns the oldest held packet when
    // it had to make room (the caller drops it), else nullptr.
    rte_mbuf* hold(rte_mbuf* packet, const FragmentKey& key, std::uint64_t now);
    // Moves the packets held for `key` into `out` (at most `room`), in arrival order.
    unsigned release(const FragmentKey& key, rte_mbuf** out, unsigned room);
    // Moves the packets held `lifetime` ticks or longer into `out` (at most `room`).
    unsigned expire(std::uint64_t now, rte_mbuf** out, unsigned room);

    unsigned held() const { return count_; }

  private:
    struct Held {
        FragmentKey key;
        rte_mbuf* packet = nullptr;
        std::uint64_t arrived = 0;
    };
    // Moves the held entries for which `take(entry)` holds into `out`, keeping the rest in order.
    template <typename Take>
    unsigned take_if(Take take, rte_mbuf** out, unsigned room);

    std::array<Held, capacity> held_{};  // [0, count_), oldest first
    unsigned count_ = 0;
    std::uint64_t lifetime_;
};

}  // namespace meshgate::dataplane
