// X25519 (RFC 7748) through libsodium: key generation and Diffie-Hellman.
#pragma once

#include "crypto/keys.hpp"
#include "crypto/random.hpp"

namespace meshgate::crypto {

using SharedSecret = Secret<key_size>;

// A fresh private key from random_bytes, clamped as `wg genkey` prints it.
PrivateKey generate_private_key();
PublicKey derive_public_key(const PrivateKey& private_key);

// DH(private, public). Returns false, and leaves `out` zeroed, when the result is all
// zeros (a low-order public key): WireGuard treats that as a failed handshake.
[[nodiscard]] bool dh(SharedSecret& out, const PrivateKey& private_key,
                      const PublicKey& public_key);

}  // namespace meshgate::crypto
