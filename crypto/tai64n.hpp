// TAI64N timestamps (whitepaper §5.4.4): 8 bytes big-endian seconds since 1970 plus 2^62
// (TAI64 label, leap seconds ignored as WireGuard does), then 4 bytes big-endian nanoseconds.
// Responders keep the greatest timestamp per peer to reject replayed initiations.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace meshgate::crypto {

using Tai64n = std::array<std::uint8_t, 12>;

// Nanoseconds are rounded down to a multiple of 2^24 ns (~16.8 ms, coarser than the 50/s
// initiation limit), as the kernel and wireguard-go do, so the timestamp does not leak a
// precise clock reading to an observer who learns the static key later.
Tai64n tai64n_from(std::chrono::system_clock::time_point time);

// a is strictly later than b. Big-endian layout makes this a byte comparison.
bool tai64n_after(const Tai64n& a, const Tai64n& b);

}  // namespace meshgate::crypto
