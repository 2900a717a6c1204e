// Scratch arrays for a burst loop: room for up to N values on the stack, left uncleared.
//
// A plain array of a type with default member initialisers (NatPacket, FlowKey, NatOutcome) is
// cleared whole on every call, though the loops that use it fill each slot before they read
// it: in the NAT's burst calls and the exit path around them, that was about 16 instructions
// a packet each way, three memsets included (callgrind, exit_out/64/1000, session 30).
//
// Threads: lives on one call's stack.
#pragma once

#include <cstddef>
#include <type_traits>

namespace meshgate::dataplane {

// T must be trivially copyable and destructible: a slot holds a T once one is assigned to it
// (an implicit-lifetime type, C++20), and nothing needs destroying.
template <typename T, std::size_t N>
class BurstScratch {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

  public:
    // User-provided and empty: no slot is initialised, not even by `BurstScratch<T, N> x{}`.
    BurstScratch() {}
    BurstScratch(const BurstScratch&) = delete;
    BurstScratch& operator=(const BurstScratch&) = delete;

    // The slots, for the loop to index through this pointer (indexing the scratch itself
    // cost 3-4 instructions a packet more in the NAT's burst calls).
    T* data() { return slots_; }

  private:
    // A union member is not initialised unless a constructor says so. (Bytes reached through
    // std::launder would do as well, but the laundered pointer hid from GCC that two scratch
    // arrays cannot overlap, and the NAT's outbound burst reloaded what it had just read: 15
    // instructions a packet more in callgrind of exit_out/64/1000.)
    union {
        T slots_[N];
    };
};

}  // namespace meshgate::dataplane
