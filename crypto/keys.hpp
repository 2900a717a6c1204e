// Fixed-size key types. Secret types wipe themselves whenever they are destroyed or
// overwritten, so no code path (early return, exception in a cold path) leaves a copy behind.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "crypto/secure.hpp"

namespace meshgate::crypto {

inline constexpr std::size_t key_size = 32;

// Public values: freely copyable, never wiped.
using PublicKey = std::array<std::uint8_t, key_size>;

// A secret of N bytes that wipes itself. Copyable (the handshake needs copies of chaining
// keys) but every copy wipes on its own destruction.
template <std::size_t N>
class Secret {
  public:
    Secret() = default;
    explicit Secret(std::span<const std::uint8_t, N> bytes) {
        std::copy(bytes.begin(), bytes.end(), bytes_.begin());
    }
    Secret(const Secret&) = default;
    Secret& operator=(const Secret&) = default;
    ~Secret() { wipe(bytes_.data(), N); }

    std::uint8_t* data() { return bytes_.data(); }
    const std::uint8_t* data() const { return bytes_.data(); }
    static constexpr std::size_t size() { return N; }
    std::span<std::uint8_t, N> span() { return bytes_; }
    std::span<const std::uint8_t, N> span() const { return bytes_; }
    void clear() { wipe(bytes_.data(), N); }
    bool is_zero() const { return crypto::is_zero(bytes_.data(), N); }
    bool operator==(const Secret& other) const {
        return equal(bytes_.data(), other.bytes_.data(), N);
    }

  private:
    std::array<std::uint8_t, N> bytes_{};
};

using PrivateKey = Secret<key_size>;
using SymmetricKey = Secret<key_size>;  // chaining keys, transport keys, PSKs
using PresharedKey = Secret<key_size>;

// Keys in the base64 form `wg genkey` and `wg pubkey` print: 44 characters, standard
// alphabet, one '=' of padding.
std::string to_base64(std::span<const std::uint8_t, key_size> key);
// nullopt for anything that is not exactly such a string.
std::optional<PublicKey> public_key_from_base64(std::string_view text);
std::optional<PrivateKey> private_key_from_base64(std::string_view text);

}  // namespace meshgate::crypto
