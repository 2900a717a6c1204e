#include "crypto/aead.hpp"

#include <sodium.h>

#include <cassert>
#include <cstring>

namespace meshgate::crypto {
AeadNonce wireguard_nonce(std::uint64_t counter) {
    AeadNonce nonce{};
    for (int i = 0; i < 8; ++i) {
        nonce[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
    }
    return nonce;
}

void aead_seal_with_nonce(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                          const AeadNonce& nonce, std::span<const std::uint8_t> plaintext,
                          std::span<const std::uint8_t> aad) {
    assert(out.size() == plaintext.size() + aead_overhead);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        out.data(), out.data() + plaintext.size(), nullptr, plaintext.data(), plaintext.size(),
        aad.data(), aad.size(), nullptr, nonce.data(), key.data());
}

bool aead_open_with_nonce(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                          const AeadNonce& nonce, std::span<const std::uint8_t> sealed,
                          std::span<const std::uint8_t> aad) {
    if (sealed.size() < aead_overhead || out.size() != sealed.size() - aead_overhead) {
        return false;
    }
    std::size_t length = sealed.size() - aead_overhead;
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            out.data(), nullptr, sealed.data(), length, sealed.data() + length, aad.data(),
            aad.size(), nonce.data(), key.data()) != 0) {
        wipe(out.data(), out.size());
        return false;
    }
    return true;
}

void aead_seal(std::span<std::uint8_t> out, const SymmetricKey& key, std::uint64_t counter,
               std::span<const std::uint8_t> plaintext, std::span<const std::uint8_t> aad) {
    aead_seal_with_nonce(out, key.span(), wireguard_nonce(counter), plaintext, aad);
}

bool aead_open(std::span<std::uint8_t> out, const SymmetricKey& key, std::uint64_t counter,
               std::span<const std::uint8_t> sealed, std::span<const std::uint8_t> aad) {
    return aead_open_with_nonce(out, key.span(), wireguard_nonce(counter), sealed, aad);
}

void xaead_seal(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                std::span<const std::uint8_t, xaead_nonce_size> nonce,
                std::span<const std::uint8_t> plaintext, std::span<const std::uint8_t> aad) {
    assert(out.size() == plaintext.size() + aead_overhead);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        out.data(), out.data() + plaintext.size(), nullptr, plaintext.data(), plaintext.size(),
        aad.data(), aad.size(), nullptr, nonce.data(), key.data());
}

bool xaead_open(std::span<std::uint8_t> out, std::span<const std::uint8_t, 32> key,
                std::span<const std::uint8_t, xaead_nonce_size> nonce,
                std::span<const std::uint8_t> sealed, std::span<const std::uint8_t> aad) {
    if (sealed.size() < aead_overhead || out.size() != sealed.size() - aead_overhead) {
        return false;
    }
    std::size_t length = sealed.size() - aead_overhead;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            out.data(), nullptr, sealed.data(), length, sealed.data() + length, aad.data(),
            aad.size(), nonce.data(), key.data()) != 0) {
        wipe(out.data(), out.size());
        return false;
    }
    return true;
}

}  // namespace meshgate::crypto
