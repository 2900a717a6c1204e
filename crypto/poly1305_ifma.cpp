// Poly1305 for eight AEAD messages at once with AVX-512 IFMA (vpmadd52luq/huq): one message
// per 64-bit lane, h and r in radix 2^44 as in the scalar form (poly1305.cpp), so the 52-bit
// multipliers take every limb whole. Lanes step through their blocks together; a lane whose
// message has ended stops changing. Every lane reads its own buffer: while all eight are in
// their full blocks, with one 16-byte load each (nearly all of a burst's blocks, since the
// engine groups jobs of equal length); past that, with gathers that also reach each lane's
// tail (the zero-padded last block and the lengths).
//
// Measured against the scalar form inside the 16-lane ChaCha20 backend (bench/RESULTS.md):
// the vector form is what lets small packets run at several times ipsec-mb's rate.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "crypto/poly1305.hpp"
#include "crypto/secure.hpp"

// GCC 12 reports its own AVX-512 intrinsics (their _mm512_undefined_* pass-through operand)
// as uninitialised once inlined here: a known false positive, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace meshgate::crypto::poly1305 {
namespace {

using u64 = std::uint64_t;

constexpr u64 mask44 = 0xFFFFFFFFFFFULL;
constexpr u64 mask42 = 0x3FFFFFFFFFFULL;
constexpr u64 high_bit = 1ULL << 40;    // 2^128 in the third limb: every AEAD block is full
constexpr u64 prefetch_distance = 256;  // bytes ahead of the block being summed: four lines

// The AEAD's message after the full ciphertext blocks: the zero-padded partial block (if
// any) and the lengths block. Per lane, so every lane's message is "full blocks, then tail".
struct alignas(16) Tail {
    std::uint8_t bytes[32];
    unsigned blocks;
};

void make_tail(Tail& tail, const std::uint8_t* ciphertext, std::size_t length) {
    std::memset(tail.bytes, 0, sizeof(tail.bytes));
    std::size_t rest = length % 16;
    std::uint8_t* lengths = tail.bytes;
    if (rest != 0) {
        std::memcpy(tail.bytes, ciphertext + length - rest, rest);
        lengths += 16;
    }
    u64 ciphertext_length = length;
    std::memcpy(lengths + 8, &ciphertext_length, 8);
    tail.blocks = rest != 0 ? 2 : 1;
}

// r and s = r * 20 of eight lanes; s folds limb products at or above 2^130 back (2^130 = 5
// mod p, and 4 for the 44/44/42 split).
struct Multiplier {
    __m512i r0, r1, r2, s1, s2;
};

// One limb of (a0, a1, a2) * r: a0 * x + a1 * y + a2 * z, as the low and high 52 bits of the
// 104-bit products summed apart (x, y, z being that limb's r or s terms).
[[gnu::always_inline]] inline void limb_product(__m512i a0, __m512i a1, __m512i a2, __m512i x,
                                                __m512i y, __m512i z, __m512i& lo, __m512i& hi) {
    const __m512i zero = _mm512_setzero_si512();
    lo = _mm512_madd52lo_epu64(zero, a0, x);
    lo = _mm512_madd52lo_epu64(lo, a1, y);
    lo = _mm512_madd52lo_epu64(lo, a2, z);
    hi = _mm512_madd52hi_epu64(zero, a0, x);
    hi = _mm512_madd52hi_epu64(hi, a1, y);
    hi = _mm512_madd52hi_epu64(hi, a2, z);
}

// h = (h + m) * r mod p (partly reduced) in every lane, m being the 16-byte block whose low
// and high halves are t0 and t1.
[[gnu::always_inline]] inline void absorb(__m512i& h0, __m512i& h1, __m512i& h2,
                                          const Multiplier& m, __m512i t0, __m512i t1) {
    const __m512i mask44v = _mm512_set1_epi64(static_cast<long long>(mask44));
    const __m512i mask42v = _mm512_set1_epi64(static_cast<long long>(mask42));
    const __m512i hibit = _mm512_set1_epi64(static_cast<long long>(high_bit));
    __m512i a0 = _mm512_add_epi64(h0, _mm512_and_si512(t0, mask44v));
    __m512i a1 = _mm512_add_epi64(
        h1, _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(t0, 44), _mm512_slli_epi64(t1, 20)),
                             mask44v));
    __m512i a2 = _mm512_add_epi64(
        h2, _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi64(t1, 24), mask42v), hibit));

    __m512i lo0, hi0, lo1, hi1, lo2, hi2;
    limb_product(a0, a1, a2, m.r0, m.s2, m.s1, lo0, hi0);
    limb_product(a0, a1, a2, m.r1, m.r0, m.s2, lo1, hi1);
    limb_product(a0, a1, a2, m.r2, m.r1, m.r0, lo2, hi2);

    // A product is lo + hi * 2^52; carry in radix 2^44 (2^42 for the top limb).
    __m512i c = _mm512_add_epi64(_mm512_srli_epi64(lo0, 44), _mm512_slli_epi64(hi0, 8));
    a0 = _mm512_and_si512(lo0, mask44v);
    lo1 = _mm512_add_epi64(lo1, c);
    c = _mm512_add_epi64(_mm512_srli_epi64(lo1, 44), _mm512_slli_epi64(hi1, 8));
    a1 = _mm512_and_si512(lo1, mask44v);
    lo2 = _mm512_add_epi64(lo2, c);
    c = _mm512_add_epi64(_mm512_srli_epi64(lo2, 42), _mm512_slli_epi64(hi2, 10));
    a2 = _mm512_and_si512(lo2, mask42v);
    a0 = _mm512_add_epi64(a0, _mm512_add_epi64(c, _mm512_slli_epi64(c, 2)));  // + c * 5
    c = _mm512_srli_epi64(a0, 44);
    h0 = _mm512_and_si512(a0, mask44v);
    h1 = _mm512_add_epi64(a1, c);
    h2 = a2;
}

// Every fourth block (one cache line per lane) start loading the line four ahead: the loads
// of a latency-bound chain stall on every line the hardware prefetcher has not brought in
// (packets fresh from a NIC or a ring sit in L3 or further).
[[gnu::always_inline]] inline void prefetch_ahead(const u64* message, const std::uint32_t* lengths,
                                                  unsigned count, u64 block) {
    if ((block & 3) != 0) {
        return;
    }
    for (unsigned l = 0; l < count; ++l) {
        if (block * 16 + prefetch_distance < lengths[l]) {
            _mm_prefetch(reinterpret_cast<const char*>(message[l] + block * 16 + prefetch_distance),
                         _MM_HINT_NTA);
        }
    }
}

// Block b of eight messages that all have a full block there: one 16-byte load a lane, then
// low halves to t0 and high halves to t1 in lane order. Even lanes fill the 128-bit slots of
// one register and odd lanes of the other, so unpacking pairs them back in order. Cheaper than
// two gathers, which is what the blocks past some lane's last full block still take.
[[gnu::always_inline]] inline void load_full_blocks(const u64 message[8], u64 block, __m512i& t0,
                                                    __m512i& t1) {
    const u64 at = block * 16;
    auto pair = [&message, at](unsigned low, unsigned high) {
        return _mm256_inserti128_si256(
            _mm256_castsi128_si256(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(message[low] + at))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(message[high] + at)), 1);
    };
    const __m512i even = _mm512_inserti64x4(_mm512_castsi256_si512(pair(0, 2)), pair(4, 6), 1);
    const __m512i odd = _mm512_inserti64x4(_mm512_castsi256_si512(pair(1, 3)), pair(5, 7), 1);
    t0 = _mm512_unpacklo_epi64(even, odd);
    t1 = _mm512_unpackhi_epi64(even, odd);
}

}  // namespace

void aead_tags_x8(std::uint8_t* const tags[8], const std::uint8_t (*keys)[64],
                  const std::uint8_t* const ciphertexts[8], const std::uint32_t lengths[8],
                  unsigned count) {
    if (count == 0) {
        return;
    }
    alignas(64) u64 r[3][8] = {}, h[3][8] = {};
    alignas(64) u64 full_blocks[8] = {}, total_blocks[8] = {}, message[8] = {}, tail_at[8] = {};
    Tail tails[8];
    u64 most = 0;
    u64 all_full = ~u64{0};  // blocks every lane has whole in its ciphertext
    for (unsigned l = 0; l < count; ++l) {
        Limbs clamped;
        clamp(keys[l], clamped);
        r[0][l] = clamped[0], r[1][l] = clamped[1], r[2][l] = clamped[2];
        make_tail(tails[l], ciphertexts[l], lengths[l]);
        full_blocks[l] = lengths[l] / 16;
        total_blocks[l] = full_blocks[l] + tails[l].blocks;
        message[l] = reinterpret_cast<u64>(ciphertexts[l]);
        tail_at[l] = reinterpret_cast<u64>(tails[l].bytes) - 16 * full_blocks[l];
        most = std::max(most, total_blocks[l]);
        all_full = std::min(all_full, full_blocks[l]);
    }
    Multiplier m;
    m.r0 = _mm512_load_si512(r[0]);
    m.r1 = _mm512_load_si512(r[1]);
    m.r2 = _mm512_load_si512(r[2]);
    m.s1 = _mm512_add_epi64(_mm512_slli_epi64(m.r1, 4), _mm512_slli_epi64(m.r1, 2));
    m.s2 = _mm512_add_epi64(_mm512_slli_epi64(m.r2, 4), _mm512_slli_epi64(m.r2, 2));
    const __m512i zero = _mm512_setzero_si512();
    __m512i h0 = zero, h1 = zero, h2 = zero;

    // Blocks every lane has: plain loads. Idle lanes read lane 0's message (their h is never
    // used, and the gathers below leave them out).
    for (unsigned l = count; l < 8; ++l) {
        message[l] = message[0];
    }
    u64 b = 0;
    for (; b < all_full; ++b) {
        prefetch_ahead(message, lengths, count, b);
        __m512i t0, t1;
        load_full_blocks(message, b, t0, t1);
        absorb(h0, h1, h2, m, t0, t1);
    }

    // The rest, lane by lane as far as each goes: gathers from the ciphertext for full blocks
    // and from the lane's tail afterwards; lanes whose message has ended keep their h.
    const __m512i full = _mm512_load_si512(full_blocks), total = _mm512_load_si512(total_blocks);
    const __m512i base = _mm512_load_si512(message), tail_base = _mm512_load_si512(tail_at);
    for (; b < most; ++b) {
        prefetch_ahead(message, lengths, count, b);
        const __m512i block = _mm512_set1_epi64(static_cast<long long>(b));
        const __mmask8 active =
            _mm512_cmplt_epu64_mask(block, total) & static_cast<__mmask8>((1u << count) - 1);
        const __mmask8 in_tail = _mm512_cmpge_epu64_mask(block, full);
        const __m512i offset = _mm512_slli_epi64(block, 4);
        __m512i address = _mm512_mask_blend_epi64(in_tail, base, tail_base);
        address = _mm512_add_epi64(address, offset);
        const __m512i t0 = _mm512_mask_i64gather_epi64(zero, active, address, nullptr, 1);
        const __m512i t1 = _mm512_mask_i64gather_epi64(
            zero, active, _mm512_add_epi64(address, _mm512_set1_epi64(8)), nullptr, 1);
        __m512i n0 = h0, n1 = h1, n2 = h2;
        absorb(n0, n1, n2, m, t0, t1);
        h0 = _mm512_mask_mov_epi64(h0, active, n0);
        h1 = _mm512_mask_mov_epi64(h1, active, n1);
        h2 = _mm512_mask_mov_epi64(h2, active, n2);
    }
    _mm512_store_si512(h[0], h0);
    _mm512_store_si512(h[1], h1);
    _mm512_store_si512(h[2], h2);
    for (unsigned l = 0; l < count; ++l) {
        finish(tags[l], keys[l], {h[0][l], h[1][l], h[2][l]});
    }
    wipe(r, sizeof(r));
    wipe(h, sizeof(h));
    wipe(tails, sizeof(tails));
}

}  // namespace meshgate::crypto::poly1305
