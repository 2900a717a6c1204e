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
#include <cstring>

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

// True when an IPv4 header of `header_length` bytes checks out (its sum, checksum field
// included, folds to 0xFFFF). The option-less 20-byte header, nearly every packet, is summed
// inline as five 32-bit words: a call into raw_sum() cost classify more than the rest of
// parsing a frame (perf, hub/64/1000).
inline bool ipv4_header_checksum_ok(const void* header, std::uint32_t header_length) {
    if (header_length != 20) {
        return fold_sum(raw_sum(header, header_length)) == 0xFFFF;
    }
    std::uint64_t sum = 0;
    for (unsigned i = 0; i < 5; ++i) {
        std::uint32_t word;
        std::memcpy(&word, static_cast<const std::uint8_t*>(header) + 4 * i, 4);
        sum += word;
    }
    sum = (sum & 0xFFFFFFFF) + (sum >> 32);  // at most 33 bits: fold twice
    sum = (sum & 0xFFFFFFFF) + (sum >> 32);
    return fold_sum(static_cast<std::uint32_t>(sum)) == 0xFFFF;
}

}  // namespace meshgate::dataplane
