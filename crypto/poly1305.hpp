// Poly1305 (RFC 8439 §2.5) for the batch engine: the 44-bit-limb scalar form, with the AEAD
// framing (ciphertext, zero pad to 16, 64-bit lengths) folded in so no buffer is built.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace meshgate::crypto::poly1305 {

inline constexpr std::size_t key_size = 32;
inline constexpr std::size_t tag_size = 16;

// One-shot MAC over a message (RFC 8439 §2.5.1).
void mac(std::uint8_t tag[tag_size], const std::uint8_t key[key_size], const std::uint8_t* message,
         std::size_t length);

// The ChaCha20-Poly1305 AEAD tag with no additional data (RFC 8439 §2.8): the MAC of
// ciphertext || pad16 || le64(0) || le64(length).
void aead_tag(std::uint8_t tag[tag_size], const std::uint8_t key[key_size],
              const std::uint8_t* ciphertext, std::size_t length);

// Building blocks shared with the vector form: r clamped and split into 44/44/42-bit limbs,
// and the final reduction of h (same limbs) plus s into the tag.
using Limbs = std::array<std::uint64_t, 3>;
void clamp(const std::uint8_t key[key_size], Limbs& r);
void finish(std::uint8_t tag[tag_size], const std::uint8_t key[key_size], const Limbs& h);

// Eight AEAD tags at once with AVX-512 IFMA: one job per 64-bit lane, radix 2^44 limbs.
// Lanes may have different lengths; count <= 8 (idle lanes are ignored). Only for CPUs with
// avx512ifma (the batch engine checks); compiled with AVX-512 flags.
void aead_tags_x8(std::uint8_t* const tags[8], const std::uint8_t (*keys)[64],
                  const std::uint8_t* const ciphertexts[8], const std::uint32_t lengths[8],
                  unsigned count);

}  // namespace meshgate::crypto::poly1305
