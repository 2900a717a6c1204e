// Poly1305 in radix 2^44: h and r in three limbs (44, 44, 42 bits), products in 128 bits.
// Reduction uses 2^130 = 5 (mod p): a limb product that lands at or above 2^130 is folded
// back multiplied by 5 (and by 4 more for the 2-bit offset of the 44/44/42 split, hence the
// factor 20 in s1, s2).
#include "crypto/poly1305.hpp"

#include <algorithm>
#include <cstring>

#include "crypto/secure.hpp"

namespace meshgate::crypto::poly1305 {
namespace {

using u64 = std::uint64_t;
using u128 = unsigned __int128;

constexpr u64 mask44 = 0xFFFFFFFFFFFULL;
constexpr u64 mask42 = 0x3FFFFFFFFFFULL;
constexpr u64 high_bit = 1ULL << 40;  // 2^128 in the third limb: set on every full block

inline u64 load64(const std::uint8_t* p) {
    u64 v;
    std::memcpy(&v, p, 8);
    return v;  // x86-64: little-endian
}

// Clamps r (RFC 8439 §2.5.1) while splitting it into 44/44/42-bit limbs.
void clamp_limbs(const std::uint8_t key[32], u64& r0, u64& r1, u64& r2) {
    u64 t0 = load64(key);
    u64 t1 = load64(key + 8);
    r0 = t0 & 0xFFC0FFFFFFFULL;
    r1 = ((t0 >> 44) | (t1 << 20)) & 0xFFFFFC0FFFFULL;
    r2 = (t1 >> 24) & 0x00FFFFFFC0FULL;
}

// Final reduction mod 2^130 - 5, then + s (key bytes 16..31) mod 2^128. Limbs by value: the
// caller keeps (and wipes) its own copies.
void finish_limbs(std::uint8_t tag[16], const std::uint8_t key[32], u64 h0, u64 h1, u64 h2) {
    // Two rounds of carry propagation bring every limb within its width.
    for (int round = 0; round < 2; ++round) {
        u64 c = h1 >> 44;
        h1 &= mask44;
        h2 += c;
        c = h2 >> 42;
        h2 &= mask42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= mask44;
        h1 += c;
    }
    u64 c;

    // g = h - p = h + 5 - 2^130; keep g when it did not underflow (constant time).
    u64 g0 = h0 + 5;
    c = g0 >> 44;
    g0 &= mask44;
    u64 g1 = h1 + c;
    c = g1 >> 44;
    g1 &= mask44;
    u64 g2 = h2 + c - (1ULL << 42);
    u64 keep_g = (g2 >> 63) - 1;  // all ones when g2 is non-negative
    h0 = (h0 & ~keep_g) | (g0 & keep_g);
    h1 = (h1 & ~keep_g) | (g1 & keep_g);
    h2 = (h2 & ~keep_g) | (g2 & keep_g);

    u64 t0 = load64(key + 16);
    u64 t1 = load64(key + 24);
    h0 += t0 & mask44;
    c = h0 >> 44;
    h0 &= mask44;
    h1 += (((t0 >> 44) | (t1 << 20)) & mask44) + c;
    c = h1 >> 44;
    h1 &= mask44;
    h2 += ((t1 >> 24) & mask42) + c;
    h2 &= mask42;
    u64 out0 = h0 | (h1 << 44);
    u64 out1 = (h1 >> 20) | (h2 << 24);
    std::memcpy(tag, &out0, 8);
    std::memcpy(tag + 8, &out1, 8);
}

struct State {
    u64 r0, r1, r2, s1, s2;
    u64 h0 = 0, h1 = 0, h2 = 0;

    explicit State(const std::uint8_t key[32]) {
        clamp_limbs(key, r0, r1, r2);
        s1 = r1 * 20;
        s2 = r2 * 20;
    }

    // h = (h + block + hibit) * r mod p over `count` 16-byte blocks. hibit is 2^128 for a
    // block of 16 message bytes, 0 for RFC 8439's short final block (which carries its own 1).
    void blocks(const std::uint8_t* m, std::size_t count, u64 hibit = high_bit) {
        u64 a0 = h0, a1 = h1, a2 = h2;
        for (; count > 0; --count, m += 16) {
            u64 t0 = load64(m);
            u64 t1 = load64(m + 8);
            a0 += t0 & mask44;
            a1 += ((t0 >> 44) | (t1 << 20)) & mask44;
            a2 += ((t1 >> 24) & mask42) | hibit;
            u128 d0 = (u128)a0 * r0 + (u128)a1 * s2 + (u128)a2 * s1;
            u128 d1 = (u128)a0 * r1 + (u128)a1 * r0 + (u128)a2 * s2;
            u128 d2 = (u128)a0 * r2 + (u128)a1 * r1 + (u128)a2 * r0;
            u64 c = (u64)(d0 >> 44);
            a0 = (u64)d0 & mask44;
            d1 += c;
            c = (u64)(d1 >> 44);
            a1 = (u64)d1 & mask44;
            d2 += c;
            c = (u64)(d2 >> 42);
            a2 = (u64)d2 & mask42;
            a0 += c * 5;
            c = a0 >> 44;
            a0 &= mask44;
            a1 += c;
        }
        h0 = a0, h1 = a1, h2 = a2;
    }

    void finish(std::uint8_t tag[16], const std::uint8_t key[32]) const {
        finish_limbs(tag, key, h0, h1, h2);
    }

    ~State() { wipe(this, sizeof(*this)); }
};

}  // namespace

void mac(std::uint8_t tag[tag_size], const std::uint8_t key[key_size], const std::uint8_t* message,
         std::size_t length) {
    State state(key);
    state.blocks(message, length / 16);
    std::size_t rest = length % 16;
    if (rest != 0) {
        // A short final block carries its 1 bit right after the message bytes, not at 2^128.
        std::uint8_t last[16] = {};
        std::memcpy(last, message + length - rest, rest);
        last[rest] = 1;
        state.blocks(last, 1, 0);
        wipe(last, sizeof(last));
    }
    state.finish(tag, key);
}

void aead_tag(std::uint8_t tag[tag_size], const std::uint8_t key[key_size],
              const std::uint8_t* ciphertext, std::size_t length) {
    State state(key);
    state.blocks(ciphertext, length / 16);
    std::size_t rest = length % 16;
    if (rest != 0) {
        std::uint8_t last[16] = {};  // zero padding: still a full block (pad16 in §2.8)
        std::memcpy(last, ciphertext + length - rest, rest);
        state.blocks(last, 1);
    }
    std::uint8_t lengths[16] = {};  // le64(aad length = 0) || le64(ciphertext length)
    u64 ciphertext_length = length;
    std::memcpy(lengths + 8, &ciphertext_length, 8);
    state.blocks(lengths, 1);
    state.finish(tag, key);
}

void clamp(const std::uint8_t key[key_size], Limbs& r) {
    clamp_limbs(key, r[0], r[1], r[2]);
}

void finish(std::uint8_t tag[tag_size], const std::uint8_t key[key_size], const Limbs& h) {
    finish_limbs(tag, key, h[0], h[1], h[2]);
}

}  // namespace meshgate::crypto::poly1305
