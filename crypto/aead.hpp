// Single-message AEADs for handshakes and cookies (whitepaper §5.4):
// AEAD = ChaCha20-Poly1305 (RFC 8439) with WireGuard's 96-bit nonce (4 zero bytes and a
// little-endian 64-bit counter), and XAEAD = XChaCha20-Poly1305 with a 24-byte nonce.
// Transport data goes through batch_aead.hpp instead.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/keys.hpp"

namespace meshgate::crypto {

inline constexpr std::size_t aead_overhead = 16;  // the Poly1305 tag
inline constexpr std::size_t aead_nonce_size = 12;
inline constexpr std::size_t xaead_nonce_size = 24;

using AeadNonce = std::array<std::uint8_t, aead_nonce_size>;

// WireGuard's nonce: 32 zero bits, then the counter as 64-bit little-endian.
AeadNonce wireguard_nonce(std::uint64_t counter);

// RFC 8439 §2.8 with an arbitrary 96-bit nonce. WireGuard always uses wireguard_nonce();
// the general form exists for the RFC's known-answer vectors.
void aead_seal_with_nonce(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                          const AeadNonce& nonce, std::span<const std::uint8_t> plaintext,
                          std::span<const std::uint8_t> aad);
[[nodiscard]] bool aead_open_with_nonce(std::span<std::uint8_t> out,
                                        std::span<const std::uint8_t, 32> key,
                                        const AeadNonce& nonce,
                                        std::span<const std::uint8_t> sealed,
                                        std::span<const std::uint8_t> aad);

// out receives plaintext.size() + 16 bytes: ciphertext then tag.
void aead_seal(std::span<std::uint8_t> out, const SymmetricKey& key, std::uint64_t counter,
               std::span<const std::uint8_t> plaintext, std::span<const std::uint8_t> aad);
// out receives sealed.size() - 16 bytes. Returns false (and zeroes out) when the tag does not
// verify or sealed is shorter than a tag.
[[nodiscard]] bool aead_open(std::span<std::uint8_t> out, const SymmetricKey& key,
                             std::uint64_t counter, std::span<const std::uint8_t> sealed,
                             std::span<const std::uint8_t> aad);

void xaead_seal(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                std::span<const std::uint8_t, xaead_nonce_size> nonce,
                std::span<const std::uint8_t> plaintext, std::span<const std::uint8_t> aad);
[[nodiscard]] bool xaead_open(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                              std::span<const std::uint8_t, xaead_nonce_size> nonce,
                              std::span<const std::uint8_t> sealed,
                              std::span<const std::uint8_t> aad);

}  // namespace meshgate::crypto
