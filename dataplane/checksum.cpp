#include "dataplane/checksum.hpp"

#include <immintrin.h>
#include <rte_ip.h>

namespace meshgate::dataplane {
namespace {

// Decided before main() (static initialisation), read-only afterwards.
const bool cpu_has_avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}();

// Adds two partial sums without losing a carry out of bit 31.
std::uint32_t add_sums(std::uint32_t a, std::uint32_t b) {
    std::uint64_t sum = std::uint64_t{a} + b;
    return static_cast<std::uint32_t>((sum & 0xFFFFFFFF) + (sum >> 32));
}

}  // namespace

std::uint32_t raw_sum_portable(const void* data, std::size_t length) {
    return rte_raw_cksum(data, length);
}

// 64 bytes per step: the 16-bit words are widened to 32-bit lanes (unpack with zero) and
// added in two accumulators. A lane gains at most 2 x 0xFFFF per step, so 32 bits hold any
// length below 2 GiB; the lanes are reduced once at the end.
__attribute__((target("avx2"))) std::uint32_t raw_sum_avx2(const void* data, std::size_t length) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    const __m256i zero = _mm256_setzero_si256();
    __m256i low = zero, high = zero;
    while (length >= 64) {
        __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes));
        __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes + 32));
        low = _mm256_add_epi32(low, _mm256_unpacklo_epi16(a, zero));
        high = _mm256_add_epi32(high, _mm256_unpackhi_epi16(a, zero));
        low = _mm256_add_epi32(low, _mm256_unpacklo_epi16(b, zero));
        high = _mm256_add_epi32(high, _mm256_unpackhi_epi16(b, zero));
        bytes += 64;
        length -= 64;
    }
    // Eight 32-bit lanes each, widened to 64 bits before adding so nothing overflows.
    __m256i wide = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(low)),
                                    _mm256_cvtepu32_epi64(_mm256_extracti128_si256(low, 1)));
    wide = _mm256_add_epi64(wide, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(high)));
    wide = _mm256_add_epi64(wide, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(high, 1)));
    alignas(32) std::uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), wide);
    std::uint64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    total = (total & 0xFFFFFFFF) + (total >> 32);
    total = (total & 0xFFFFFFFF) + (total >> 32);
    // The tail (under 64 bytes, an odd last byte included) the portable way. Every step so
    // far consumed whole 16-bit words, so the tail's words line up with the same byte order.
    return add_sums(static_cast<std::uint32_t>(total), rte_raw_cksum(bytes, length));
}

bool have_avx2_sum() {
    return cpu_has_avx2;
}

std::uint32_t raw_sum(const void* data, std::size_t length) {
    // A branch predicted the same way for the life of the process, not an indirect call.
    return cpu_has_avx2 ? raw_sum_avx2(data, length) : raw_sum_portable(data, length);
}

}  // namespace meshgate::dataplane
