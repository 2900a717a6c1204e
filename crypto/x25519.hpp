// X25519 (RFC 7748): key generation and Diffie-Hellman through libsodium, and batches of
// independent operations on eight AVX-512 IFMA lanes (x25519_ifma.cpp) for the handshake path.
#pragma once

#include <span>

#include "crypto/cpu_features.hpp"
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

// One independent X25519 operation for dh_batch(): `out` (32 bytes) = X25519(private_key,
// point), or the public key of private_key when point is null (the base point 9). Built with
// the two named constructors, so the output's type says which it is.
struct DhJob {
    std::uint8_t* out;
    const PrivateKey* private_key;
    const PublicKey* point;
    bool ok = false;  // written by dh_batch()

    static DhJob shared_secret(SharedSecret& out, const PrivateKey& private_key,
                               const PublicKey& point) {
        return {out.data(), &private_key, &point};
    }
    static DhJob public_key(PublicKey& out, const PrivateKey& private_key) {
        return {out.data(), &private_key, nullptr};
    }
};

// Runs every job, any count, in any mix of the two kinds: eight at a time on AVX-512 IFMA when
// `cpu` has it, and the rest (a remainder too small to pay for an eight-lane pass, or every job
// on other CPUs) through libsodium. Each job's result is what dh() and derive_public_key()
// give: an all-zero result (a low-order point) sets ok = false and leaves `out` zeroed.
// Reentrant; jobs may share keys and points but not outputs.
void dh_batch(std::span<DhJob> jobs, const CpuFeatures& cpu);

}  // namespace meshgate::crypto
