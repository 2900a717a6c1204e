// X25519 (RFC 7748) through libsodium: key generation and Diffie-Hellman.
#pragma once

#include "crypto/keys.hpp"

namespace meshgate::crypto {

using SharedSecret = Secret<key_size>;

// A fresh private key from the system CSPRNG, clamped as `wg genkey` prints it.
PrivateKey generate_private_key();
PublicKey derive_public_key(const PrivateKey& private_key);

// DH(private, public). Returns false, and leaves `out` zeroed, when the result is all
// zeros (a low-order public key): WireGuard treats that as a failed handshake.
[[nodiscard]] bool dh(SharedSecret& out, const PrivateKey& private_key,
                      const PublicKey& public_key);

// Fills with random bytes from the system CSPRNG (libsodium's randombytes).
void random_bytes(void* out, std::size_t size);

}  // namespace meshgate::crypto
