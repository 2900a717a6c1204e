// BLAKE2s (RFC 7693) and the constructions WireGuard builds on it (whitepaper §5.4):
// HASH, MAC (keyed BLAKE2s-128), HMAC-BLAKE2s and the KDF1/KDF2/KDF3 chain.
//
// Our own implementation: measured faster than OpenSSL's EVP BLAKE2S-256 for the short
// inputs of a handshake (bench/crypto_bench `blake2s/*`), and checked against it and the
// RFC 7693 vectors in tests/unit/crypto/blake2s_test.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/keys.hpp"

namespace meshgate::crypto {

inline constexpr std::size_t blake2s_block_size = 64;
inline constexpr std::size_t blake2s_max_output = 32;
inline constexpr std::size_t blake2s_max_key = 32;
inline constexpr std::size_t hash_size = 32;  // WireGuard's HASH and HMAC output
inline constexpr std::size_t mac_size = 16;   // WireGuard's MAC (MAC1, MAC2, cookie)

using Hash = std::array<std::uint8_t, hash_size>;
using Mac = std::array<std::uint8_t, mac_size>;

// Incremental BLAKE2s with an output length of 1..32 bytes and an optional key of up to
// 32 bytes. Wipes its state on destruction (it may hold key material).
class Blake2s {
  public:
    explicit Blake2s(std::size_t output_size = blake2s_max_output,
                     std::span<const std::uint8_t> key = {});
    ~Blake2s();
    Blake2s(const Blake2s&) = delete;
    Blake2s& operator=(const Blake2s&) = delete;

    Blake2s& update(std::span<const std::uint8_t> data);
    // Writes output_size bytes. The object must not be updated afterwards.
    void finish(std::uint8_t* out);

  private:
    friend class MacKey;
    void compress(const std::uint8_t* block, std::uint32_t last_block_flag);

    std::array<std::uint32_t, 8> h_;
    std::array<std::uint32_t, 2> t_{};
    std::array<std::uint8_t, blake2s_block_size> buffer_{};
    std::size_t buffered_ = 0;
    std::size_t output_size_;
};

// MAC(key, ·) for a key that serves many messages (mac1's key, the cookie secret). A keyed
// BLAKE2s first compresses the key as a block of its own; that state is the same for every
// message, so it is computed once here and each MAC starts from a copy: a 116-byte mac1
// takes two compressions instead of three, a cookie one instead of two.
class MacKey {
  public:
    MacKey() = default;
    explicit MacKey(std::span<const std::uint8_t> key);
    ~MacKey();
    MacKey(const MacKey& other) = default;
    MacKey& operator=(const MacKey& other) = default;

    // Same result as mac(out, key, input).
    void mac(Mac& out, std::span<const std::uint8_t> input) const;

  private:
    std::array<std::uint32_t, 8> keyed_state_{};       // h after the key block
    std::array<std::uint8_t, blake2s_max_key> key_{};  // for an empty input (key block is last)
    std::size_t key_size_ = 0;
};

// HASH(input): BLAKE2s-256.
void hash(Hash& out, std::span<const std::uint8_t> input);
// HASH(a || b): the handshake's "mix hash" step without building a temporary.
void hash(Hash& out, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);
// MAC(key, input): keyed BLAKE2s-128.
void mac(Mac& out, std::span<const std::uint8_t> key, std::span<const std::uint8_t> input);
// HMAC(key, input) with BLAKE2s-256 (RFC 2104, block size 64).
void hmac(std::span<std::uint8_t, hash_size> out, std::span<const std::uint8_t> key,
          std::span<const std::uint8_t> input);

// KDFn(key, input) (whitepaper §5.4): τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1),
// τi = HMAC(τ0, τi-1 || i). Outputs not wanted may be passed as nullptr.
void kdf(std::span<const std::uint8_t> key, std::span<const std::uint8_t> input, std::uint8_t* t1,
         std::uint8_t* t2, std::uint8_t* t3);

inline void kdf1(SymmetricKey& t1, std::span<const std::uint8_t> key,
                 std::span<const std::uint8_t> input) {
    kdf(key, input, t1.data(), nullptr, nullptr);
}
inline void kdf2(SymmetricKey& t1, SymmetricKey& t2, std::span<const std::uint8_t> key,
                 std::span<const std::uint8_t> input) {
    kdf(key, input, t1.data(), t2.data(), nullptr);
}
inline void kdf3(SymmetricKey& t1, SymmetricKey& t2, SymmetricKey& t3,
                 std::span<const std::uint8_t> key, std::span<const std::uint8_t> input) {
    kdf(key, input, t1.data(), t2.data(), t3.data());
}

}  // namespace meshgate::crypto
