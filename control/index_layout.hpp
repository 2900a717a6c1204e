// What the bits of a receiver index mean. The control thread allocates indexes by this rule
// (IndexTable) and the workers decode them by it (owner worker, session table slot); keeping
// the rule in one place is what keeps the two sides agreeing.
//
//   bits [0, owner_bits)                        the worker that owns the peer (handoff in one mask)
//   bits [owner_bits, owner_bits + slot_bits)   the index's slot in the session table
//   the bits above                              random
//
// The slot is chosen at random too, so an index is no sequence number a third party could
// predict; the high bits let a worker tell a stale index from the one now in its slot.
//
// Written once before the workers start (gateway, test fixtures), read-only afterwards.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace meshgate::control {

// A peer holds at most four live indexes: one for a handshake in flight and one per keypair
// (previous, current, next; control/keypairs.hpp).
inline constexpr std::uint32_t max_indexes_per_peer = 4;

struct IndexLayout {
    // 2^24 slots (16 bytes each in the session table) serve four million live indexes at
    // half load: a million peers. Beyond that the random high bits would run out.
    static constexpr unsigned max_slot_bits = 24;
    static constexpr unsigned max_owner_bits = 8;

    unsigned owner_bits = 0;
    // The default serves engines without a data plane (tests, the interop peer): 65,536 slots.
    unsigned slot_bits = 16;

    std::uint32_t owner_of(std::uint32_t index) const { return index & mask(owner_bits); }
    std::uint32_t slot_of(std::uint32_t index) const { return slot_decoder().slot_of(index); }
    std::uint32_t slot_count() const { return std::uint32_t{1} << slot_bits; }

    // slot_of() as a shift and a mask worked out once, for a reader that decodes an index per
    // packet (the workers' session table): from the two bit counts, each call computed the
    // mask afresh, about ten instructions a packet in decap (callgrind, exit_out/64/1000).
    struct SlotDecoder {
        unsigned shift = 0;
        std::uint32_t mask = 0;
        std::uint32_t slot_of(std::uint32_t index) const { return (index >> shift) & mask; }
    };
    SlotDecoder slot_decoder() const { return {owner_bits, mask(slot_bits)}; }
    // An index in `slot` owned by `owner`, its high bits taken from `random`.
    std::uint32_t compose(std::uint32_t random, unsigned owner, std::uint32_t slot) const {
        return (random & ~mask(owner_bits + slot_bits)) | (slot << owner_bits) |
               (owner & mask(owner_bits));
    }
    bool valid() const { return owner_bits <= max_owner_bits && slot_bits <= max_slot_bits; }

    // The layout for `workers` workers serving `peers` peers: enough owner bits to name every
    // worker, and slots for twice the indexes the peers can hold at once, so a random slot is
    // free at least half the time (IndexTable draws fewer than two on average). At least
    // 2,048 slots, so a small gateway still has room. Nullopt when it cannot fit.
    static std::optional<IndexLayout> for_peers(unsigned workers, std::uint64_t peers) {
        IndexLayout layout;
        layout.owner_bits = bits_to_count(workers);
        layout.slot_bits = bits_to_count(
            std::max<std::uint64_t>(2 * max_indexes_per_peer * peers, std::uint64_t{2048}));
        if (!layout.valid()) {
            return std::nullopt;
        }
        return layout;
    }

  private:
    // Bits 0..32 inclusive: owner_bits + slot_bits may reach 32.
    static constexpr std::uint32_t mask(unsigned bits) {
        return static_cast<std::uint32_t>((std::uint64_t{1} << bits) - 1);
    }
    // The fewest bits whose values number at least `count`.
    static constexpr unsigned bits_to_count(std::uint64_t count) {
        unsigned bits = 0;
        while (bits < 63 && (std::uint64_t{1} << bits) < count) {
            ++bits;
        }
        return bits;
    }
};

}  // namespace meshgate::control
