// X25519 (RFC 7748) for eight independent operations at once with AVX-512 IFMA: one operation
// per 64-bit lane, field elements mod p = 2^255 - 19 in five limbs of radix 2^52, limb k of all
// eight lanes in one zmm register.
//
// Why radix 2^52: vpmadd52luq/huq multiply the low 52 bits of each lane and add the low or the
// high 52 bits of the 104-bit product, so at radix 2^52 the high half of a_i*b_j lands exactly
// in column i+j+1. The catch is that they *ignore* input bits above 52, so every value that
// reaches a multiplier must be carried (each limb < 2^52); `carry()` below is what keeps that
// promise, and every function that returns an Fe returns it carried.
//
// Reduction: 2^260 = 2^5 * 2^255 = 32 * 19 = 608 (mod p) folds product columns 5..9 onto 0..4;
// bits at or above 2^255 fold back times 19.
//
// Secrets: the ladder state and the per-lane scalar words live in explicit buffers that are
// wiped before returning; no branch or memory index depends on a scalar or a point.
#include "crypto/x25519_ifma.hpp"

#include <immintrin.h>

#include <cstring>

#include "crypto/secure.hpp"

// GCC 12 reports its own AVX-512 intrinsics (their _mm512_undefined_* pass-through operand)
// as uninitialised once inlined here: a known false positive, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace meshgate::crypto::x25519_ifma {
namespace {

using u64 = std::uint64_t;
using Vec = __m512i;

constexpr unsigned limb_count = 5;
constexpr u64 mask52 = (u64{1} << 52) - 1;
constexpr u64 mask47 = (u64{1} << 47) - 1;  // limb 4 holds bits 208..254

// One field element in each of the eight lanes: v[k] holds limb k (weight 2^(52k)).
// Carried form: every limb < 2^52, limb 4 < 2^47 + 2^12, so the value is < 2^255 + 2^220.
struct Fe {
    Vec v[limb_count];
};

Vec splat(u64 x) {
    return _mm512_set1_epi64(static_cast<long long>(x));
}

Vec madd_lo(Vec acc, Vec a, Vec b) {
    return _mm512_madd52lo_epu64(acc, a, b);
}

Vec madd_hi(Vec acc, Vec a, Vec b) {
    return _mm512_madd52hi_epu64(acc, a, b);
}

// t (limbs below 2^63) to carried form. Bits at or above 2^255 (limb 4 from bit 47) fold to
// limb 0 times 19 *before* the carry pass, so the pass ends at limb 4 with nothing to wrap:
// one sequential chain instead of two.
void carry(Fe& out, Vec t[limb_count]) {
    const Vec m52 = splat(mask52);
    Vec top = _mm512_srli_epi64(t[4], 47);  // < 2^17: 19 * top is exact in the low half
    t[4] = _mm512_and_si512(t[4], splat(mask47));
    t[0] = madd_lo(t[0], top, splat(19));
#pragma GCC unroll 4
    for (unsigned k = 0; k < 4; ++k) {
        t[k + 1] = _mm512_add_epi64(t[k + 1], _mm512_srli_epi64(t[k], 52));
        out.v[k] = _mm512_and_si512(t[k], m52);
    }
    out.v[4] = t[4];
}

// Product columns 0..9 (each below 2^56) to carried form: column 5+k has weight 2^260 * 2^(52k)
// = 608 * 2^(52k). Its low 52 bits times 608 go to column k (low half) and k+1 (high half);
// its bits above 52 (< 16) times 608 go to column k+1 whole. What column 4's share pushes past
// column 4 is the 2^260 column again, so it folds once more (it is < 2^15).
void reduce(Fe& out, Vec t[10]) {
    const Vec m52 = splat(mask52), c608 = splat(608);
    Vec wrap = _mm512_setzero_si512();
#pragma GCC unroll 5
    for (unsigned k = 0; k < 5; ++k) {
        Vec low = _mm512_and_si512(t[k + 5], m52);
        Vec high = _mm512_srli_epi64(t[k + 5], 52);
        t[k] = madd_lo(t[k], low, c608);
        Vec& up = k < 4 ? t[k + 1] : wrap;
        up = madd_hi(up, low, c608);
        up = madd_lo(up, high, c608);
    }
    t[0] = madd_lo(t[0], wrap, c608);
    carry(out, t);
}

void mul(Fe& out, const Fe& a, const Fe& b) {
    Vec t[10];
    for (auto& column : t) {
        column = _mm512_setzero_si512();
    }
#pragma GCC unroll 5
    for (unsigned i = 0; i < limb_count; ++i) {
#pragma GCC unroll 5
        for (unsigned j = 0; j < limb_count; ++j) {
            t[i + j] = madd_lo(t[i + j], a.v[i], b.v[j]);
            t[i + j + 1] = madd_hi(t[i + j + 1], a.v[i], b.v[j]);
        }
    }
    reduce(out, t);
}

// a^2 with each cross product a_i*a_j (i < j) computed once and the columns doubled: 30
// multiplies instead of 50. (Doubling a limb first would push it past the multiplier's 52 bits.)
void square(Fe& out, const Fe& a) {
    Vec t[10];
    for (auto& column : t) {
        column = _mm512_setzero_si512();
    }
#pragma GCC unroll 5
    for (unsigned i = 0; i < limb_count; ++i) {
#pragma GCC unroll 5
        for (unsigned j = i + 1; j < limb_count; ++j) {
            t[i + j] = madd_lo(t[i + j], a.v[i], a.v[j]);
            t[i + j + 1] = madd_hi(t[i + j + 1], a.v[i], a.v[j]);
        }
    }
#pragma GCC unroll 10
    for (auto& column : t) {
        column = _mm512_add_epi64(column, column);
    }
#pragma GCC unroll 5
    for (unsigned i = 0; i < limb_count; ++i) {
        t[2 * i] = madd_lo(t[2 * i], a.v[i], a.v[i]);
        t[2 * i + 1] = madd_hi(t[2 * i + 1], a.v[i], a.v[i]);
    }
    reduce(out, t);
}

void square_times(Fe& out, const Fe& a, unsigned times) {
    square(out, a);
    for (unsigned i = 1; i < times; ++i) {
        square(out, out);
    }
}

void add(Fe& out, const Fe& a, const Fe& b) {
    Vec t[limb_count];
#pragma GCC unroll 5
    for (unsigned k = 0; k < limb_count; ++k) {
        t[k] = _mm512_add_epi64(a.v[k], b.v[k]);
    }
    carry(out, t);
}

// 64p = 2^261 - 1216 written with every limb >= 2^52, so a + 64p - b never goes negative in
// any limb for carried b.
constexpr u64 sixty_four_p[limb_count] = {(u64{1} << 53) - 1216, (u64{1} << 53) - 2,
                                          (u64{1} << 53) - 2, (u64{1} << 53) - 2,
                                          (u64{1} << 53) - 2};

void sub(Fe& out, const Fe& a, const Fe& b) {
    Vec t[limb_count];
#pragma GCC unroll 5
    for (unsigned k = 0; k < limb_count; ++k) {
        t[k] = _mm512_sub_epi64(_mm512_add_epi64(a.v[k], splat(sixty_four_p[k])), b.v[k]);
    }
    carry(out, t);
}

// a + 121665 * e: the ladder's AA + a24*E (RFC 7748 §5, a24 = (486662 - 2) / 4). a24 < 2^17,
// so the product spills only into one column above limb 4, which folds times 608.
void add_mul_a24(Fe& out, const Fe& a, const Fe& e) {
    const Vec a24 = splat(121665);
    Vec t[limb_count];
    Vec above = _mm512_setzero_si512();
#pragma GCC unroll 5
    for (unsigned k = 0; k < limb_count; ++k) {
        t[k] = madd_lo(a.v[k], e.v[k], a24);
    }
#pragma GCC unroll 4
    for (unsigned k = 0; k < 4; ++k) {
        t[k + 1] = madd_hi(t[k + 1], e.v[k], a24);
    }
    above = madd_hi(above, e.v[4], a24);
    t[0] = madd_lo(t[0], above, splat(608));
    carry(out, t);
}

// Swaps a and b in the lanes whose bit in `swap` is set. A blend under a mask register: the
// same instructions run whatever the mask holds.
void conditional_swap(Fe& a, Fe& b, __mmask8 swap) {
#pragma GCC unroll 5
    for (unsigned k = 0; k < limb_count; ++k) {
        Vec x = _mm512_mask_blend_epi64(swap, a.v[k], b.v[k]);
        Vec y = _mm512_mask_blend_epi64(swap, b.v[k], a.v[k]);
        a.v[k] = x;
        b.v[k] = y;
    }
}

// z^(p-2) = 1/z (Fermat; 0 stays 0), with the classic chain of 254 squarings and 11 multiplies.
// Names say which power of z they hold: z_2_k_0 = z^(2^k - 1).
void invert(Fe& out, const Fe& z) {
    Fe z2, z9, z11, z_2_5_0, z_2_10_0, z_2_20_0, z_2_50_0, z_2_100_0, t;
    square(z2, z);                    // 2
    square_times(t, z2, 2);           // 8
    mul(z9, t, z);                    // 9
    mul(z11, z9, z2);                 // 11
    square(t, z11);                   // 22
    mul(z_2_5_0, t, z9);              // 31 = 2^5 - 1
    square_times(t, z_2_5_0, 5);      // 2^10 - 2^5
    mul(z_2_10_0, t, z_2_5_0);        // 2^10 - 1
    square_times(t, z_2_10_0, 10);    // 2^20 - 2^10
    mul(z_2_20_0, t, z_2_10_0);       // 2^20 - 1
    square_times(t, z_2_20_0, 20);    // 2^40 - 2^20
    mul(t, t, z_2_20_0);              // 2^40 - 1
    square_times(t, t, 10);           // 2^50 - 2^10
    mul(z_2_50_0, t, z_2_10_0);       // 2^50 - 1
    square_times(t, z_2_50_0, 50);    // 2^100 - 2^50
    mul(z_2_100_0, t, z_2_50_0);      // 2^100 - 1
    square_times(t, z_2_100_0, 100);  // 2^200 - 2^100
    mul(t, t, z_2_100_0);             // 2^200 - 1
    square_times(t, t, 50);           // 2^250 - 2^50
    mul(t, t, z_2_50_0);              // 2^250 - 1
    square_times(t, t, 5);            // 2^255 - 2^5
    mul(out, t, z11);                 // 2^255 - 21 = p - 2
}

// Carried a to the canonical value in [0, p). Two folds bring it below 2^255 (the first can
// leave exactly 2^255 behind); then q = 1 exactly when a + 19 reaches 2^255, i.e. a >= p, and
// a + 19q with bit 255 dropped is a - qp.
void canonicalize(Fe& a) {
    Vec t[limb_count];
    for (int round = 0; round < 2; ++round) {
        std::memcpy(t, a.v, sizeof(t));
        carry(a, t);
    }
    Vec q = _mm512_add_epi64(a.v[0], splat(19));
#pragma GCC unroll 4
    for (unsigned k = 0; k < 4; ++k) {
        q = _mm512_add_epi64(a.v[k + 1], _mm512_srli_epi64(q, 52));
    }
    q = _mm512_srli_epi64(q, 47);
    a.v[0] = madd_lo(a.v[0], q, splat(19));
#pragma GCC unroll 4
    for (unsigned k = 0; k < 4; ++k) {
        a.v[k + 1] = _mm512_add_epi64(a.v[k + 1], _mm512_srli_epi64(a.v[k], 52));
        a.v[k] = _mm512_and_si512(a.v[k], splat(mask52));
    }
    a.v[4] = _mm512_and_si512(a.v[4], splat(mask47));
}

// The ladder's state and inputs for eight lanes. Kept in one object so it can be wiped: it
// holds the scalars and everything derived from them.
struct alignas(64) Lanes {
    u64 swap_bits[4][lanes];  // bit t of lane l: scalar bit t xor scalar bit t+1
    u64 limbs[limb_count][lanes];
    Fe x1, x2, z2, x3, z3;
    Fe a, aa, b, bb, e, c, d, da, cb;
};

// One step of RFC 7748 §5's ladder, in its own names: (x2:z2) doubles, (x3:z3) becomes the sum.
void ladder_step(Lanes& s) {
    add(s.a, s.x2, s.z2);          // A = x2 + z2
    square(s.aa, s.a);             // AA = A^2
    sub(s.b, s.x2, s.z2);          // B = x2 - z2
    square(s.bb, s.b);             // BB = B^2
    sub(s.e, s.aa, s.bb);          // E = AA - BB
    add(s.c, s.x3, s.z3);          // C = x3 + z3
    sub(s.d, s.x3, s.z3);          // D = x3 - z3
    mul(s.da, s.d, s.a);           // DA = D * A
    mul(s.cb, s.c, s.b);           // CB = C * B
    add(s.x3, s.da, s.cb);         // x3 = (DA + CB)^2
    square(s.x3, s.x3);            //
    sub(s.z3, s.da, s.cb);         // z3 = x1 * (DA - CB)^2
    square(s.z3, s.z3);            //
    mul(s.z3, s.z3, s.x1);         //
    mul(s.x2, s.aa, s.bb);         // x2 = AA * BB
    add_mul_a24(s.z2, s.aa, s.e);  // z2 = E * (AA + a24 * E)
    mul(s.z2, s.z2, s.e);
}

// Scalar bits 254 down to 0 (bit 255 is clamped to 0). Swapping when bit t differs from bit
// t+1 is RFC 7748's "swap ^= k_t; cswap; swap = k_t" with the xor precomputed per lane.
void ladder(Lanes& s) {
    const Vec one = splat(1), zero = _mm512_setzero_si512();
    for (unsigned k = 0; k < limb_count; ++k) {
        s.x2.v[k] = s.z3.v[k] = k == 0 ? one : zero;
        s.z2.v[k] = zero;
        s.x3.v[k] = s.x1.v[k];
    }
    for (int t = 254; t >= 0; --t) {
        Vec word = _mm512_load_si512(s.swap_bits[t / 64]);
        __mmask8 swap = _mm512_test_epi64_mask(word, splat(u64{1} << (t % 64)));
        conditional_swap(s.x2, s.x3, swap);
        conditional_swap(s.z2, s.z3, swap);
        ladder_step(s);
    }
    // The final "cswap(swap)" with swap = k_0: bit 0 is clamped to 0, so there is none.
}

u64 load64(const std::uint8_t* bytes) {
    u64 word;
    std::memcpy(&word, bytes, 8);  // x86 is little-endian, as RFC 7748's encoding
    return word;
}

void store64(std::uint8_t* bytes, u64 word) {
    std::memcpy(bytes, &word, 8);
}

// RFC 7748 §5 decodeScalar25519 and the per-lane swap bits the ladder reads.
void load_scalar(Lanes& s, unsigned lane, const std::uint8_t* scalar) {
    u64 w[4];
    for (unsigned i = 0; i < 4; ++i) {
        w[i] = load64(scalar + 8 * i);
    }
    w[0] &= ~u64{7};
    w[3] &= ~(u64{1} << 63);
    w[3] |= u64{1} << 62;
    for (unsigned i = 0; i < 4; ++i) {
        u64 next = i < 3 ? w[i + 1] << 63 : 0;
        s.swap_bits[i][lane] = w[i] ^ (w[i] >> 1 | next);
    }
    wipe(w, sizeof(w));
}

// RFC 7748 §5 decodeUCoordinate: the top bit masked; a value >= p is left as it is (every
// operation reduces mod p, which is what "accept non-canonical values" asks for).
void load_point(Lanes& s, unsigned lane, const std::uint8_t* point) {
    static const std::uint8_t base_point[32] = {9};
    if (point == nullptr) {
        point = base_point;
    }
    u64 w0 = load64(point), w1 = load64(point + 8), w2 = load64(point + 16),
        w3 = load64(point + 24) & ~(u64{1} << 63);
    s.limbs[0][lane] = w0 & mask52;
    s.limbs[1][lane] = (w0 >> 52 | w1 << 12) & mask52;
    s.limbs[2][lane] = (w1 >> 40 | w2 << 24) & mask52;
    s.limbs[3][lane] = (w2 >> 28 | w3 << 36) & mask52;
    s.limbs[4][lane] = w3 >> 16;
}

void store_result(std::uint8_t* out, const Lanes& s, unsigned lane) {
    const u64* l[limb_count] = {s.limbs[0], s.limbs[1], s.limbs[2], s.limbs[3], s.limbs[4]};
    store64(out, l[0][lane] | l[1][lane] << 52);
    store64(out + 8, l[1][lane] >> 12 | l[2][lane] << 40);
    store64(out + 16, l[2][lane] >> 24 | l[3][lane] << 28);
    store64(out + 24, l[3][lane] >> 36 | l[4][lane] << 16);
}

void load_lanes(Fe& out, const u64 (&limbs)[limb_count][lanes]) {
    for (unsigned k = 0; k < limb_count; ++k) {
        out.v[k] = _mm512_load_si512(limbs[k]);
    }
}

void store_lanes(u64 (&limbs)[limb_count][lanes], const Fe& in) {
    for (unsigned k = 0; k < limb_count; ++k) {
        _mm512_store_si512(limbs[k], in.v[k]);
    }
}

}  // namespace

void scalarmult_x8(std::uint8_t* const out[lanes], const std::uint8_t* const scalars[lanes],
                   const std::uint8_t* const points[lanes], unsigned count) {
    static const std::uint8_t idle_scalar[32] = {};
    Lanes s;
    for (unsigned lane = 0; lane < lanes; ++lane) {
        bool busy = lane < count;
        load_scalar(s, lane, busy ? scalars[lane] : idle_scalar);
        load_point(s, lane, busy ? points[lane] : nullptr);
    }
    load_lanes(s.x1, s.limbs);
    ladder(s);
    invert(s.a, s.z2);  // x2 / z2; a low-order point left z2 = 0, so the result is 0
    mul(s.x2, s.x2, s.a);
    canonicalize(s.x2);
    store_lanes(s.limbs, s.x2);
    for (unsigned lane = 0; lane < count; ++lane) {
        store_result(out[lane], s, lane);
    }
    wipe_object(s);
}

}  // namespace meshgate::crypto::x25519_ifma
