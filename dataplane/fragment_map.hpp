// What a datagram's first fragment decided, for its later fragments.
//
// The fragments of one IP datagram share its source, destination, protocol and identification
// (RFC 791 §3.2; RFC 8200 §4.5 for IPv6's fragment header), but only the first carries the
// transport header: the ports NAT keys its flows by, and the port that steers return traffic to
// the worker owning it. So the first fragment's outcome (its flow, or its owner worker) is
// remembered here under that quadruple, and the later fragments find it. This is the
// "virtual reassembly" of VPP's NAT: nothing is put together, each fragment goes on as it
// arrives. Fragments arriving before their first one are not found: from the uplink, its
// steering holds them until the first comes (early_fragments.hpp); through the tunnel, where
// one peer's packets keep their order, the caller drops them (counted).
//
// Entries live `lifetime` ticks. A datagram's fragments arrive within milliseconds, and a short
// life keeps the IPv4 identification (16 bits, RFC 6864) from naming two datagrams at once.
// One entry per slot, chosen by a keyed hash (FlowHasher): a newer datagram takes the slot of an
// older one, whose later fragments are then dropped. Bounded, allocated once.
//
// Writer and reader: one worker (the NAT table's, or the steering worker's). Not shared.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/flow_index.hpp"

namespace meshgate::dataplane {

// How long a first fragment's outcome is remembered for the rest of its datagram.
constexpr std::uint32_t fragment_lifetime_seconds = 2;

enum class FragmentDirection : std::uint8_t { to_uplink = 1, from_uplink = 2 };

struct FragmentKey {
    std::uint8_t version = 0;  // 4 or 6
    std::uint8_t protocol = 0;
    FragmentDirection direction = FragmentDirection::to_uplink;
    std::uint8_t zero = 0;
    std::uint32_t identification = 0;       // IPv4: 16 bits, IPv6: 32
    std::array<std::uint8_t, 16> source{};  // IPv4: the first 4 bytes, the rest zero
    std::array<std::uint8_t, 16> destination{};

    bool operator==(const FragmentKey&) const = default;
};
static_assert(sizeof(FragmentKey) == FlowHasher::key_bytes);

class FragmentMap {
  public:
    // `capacity` is rounded up to a power of two. Cold path: allocates.
    FragmentMap(std::uint32_t capacity, std::uint64_t lifetime_ticks);

    void remember(const FragmentKey& key, std::uint32_t value, std::uint64_t now);
    // The value remembered for `key`, unless it has outlived its lifetime.
    std::optional<std::uint32_t> find(const FragmentKey& key, std::uint64_t now) const;

    std::uint32_t capacity() const { return static_cast<std::uint32_t>(entries_.size()); }
    // Live entries a newer datagram took the slot of.
    std::uint64_t displaced() const { return displaced_; }

  private:
    struct alignas(64) Entry {
        FragmentKey key;
        std::uint32_t value = 0;
        std::uint64_t expires = 0;  // 0: empty
    };
    std::size_t slot_of(const FragmentKey& key) const {
        return hasher_(&key) & (entries_.size() - 1);
    }

    FlowHasher hasher_;
    std::vector<Entry> entries_;
    std::uint64_t lifetime_;
    std::uint64_t displaced_ = 0;
};

}  // namespace meshgate::dataplane
