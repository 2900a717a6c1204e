#include "crypto/x25519.hpp"

#include <sodium.h>

namespace meshgate::crypto {

PrivateKey generate_private_key() {
    PrivateKey key;
    random_bytes(key.data(), key.size());
    // Clamp (RFC 7748 §5) so the stored form equals what `wg genkey` writes.
    key.data()[0] &= 248;
    key.data()[31] &= 127;
    key.data()[31] |= 64;
    return key;
}

PublicKey derive_public_key(const PrivateKey& private_key) {
    PublicKey public_key{};
    crypto_scalarmult_curve25519_base(public_key.data(), private_key.data());
    return public_key;
}

bool dh(SharedSecret& out, const PrivateKey& private_key, const PublicKey& public_key) {
    // libsodium already returns -1 for an all-zero result; the explicit check keeps the rule
    // visible and independent of the library version.
    if (crypto_scalarmult_curve25519(out.data(), private_key.data(), public_key.data()) != 0 ||
        out.is_zero()) {
        out.clear();
        return false;
    }
    return true;
}

}  // namespace meshgate::crypto
