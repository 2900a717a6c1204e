// The Internet checksum (RFC 1071) over packet bytes, fast enough to run over every datagram
// a worker sends: ports without checksum offload (af_packet, af_xdp, rings) leave it to us,
// and over IPv6 the UDP checksum is mandatory.
//
// raw_sum() returns the one's-complement sum of the bytes as 16-bit words in memory order,
// not yet folded or inverted, so sums of pieces (pseudo-header, header, payload) add up.
// Any lcore; no allocation, no state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meshgate::dataplane {

// AVX2 when the CPU has it (chosen once at start-up), else portable. Lengths up to 64 KiB.
std::uint32_t raw_sum(const void* data, std::size_t length);

// Both implementations, for the tests that hold them to each other.
std::uint32_t raw_sum_portable(const void* data, std::size_t length);
std::uint32_t raw_sum_avx2(const void* data, std::size_t length);
bool have_avx2_sum();

// Folds a 32-bit partial sum to 16 bits (end-around carry).
inline std::uint16_t fold_sum(std::uint32_t sum) {
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

}  // namespace meshgate::dataplane
