#include "crypto/blake2s.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

#include "crypto/secure.hpp"

namespace meshgate::crypto {
namespace {

// RFC 7693 §2.6 and §2.7.
constexpr std::array<std::uint32_t, 8> initial_vector = {
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};

constexpr std::uint8_t sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

inline std::uint32_t load_le32(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    if constexpr (std::endian::native == std::endian::big) {
        v = __builtin_bswap32(v);
    }
    return v;
}

inline void store_le32(std::uint8_t* p, std::uint32_t v) {
    if constexpr (std::endian::native == std::endian::big) {
        v = __builtin_bswap32(v);
    }
    std::memcpy(p, &v, 4);
}

// The mixing function G (RFC 7693 §3.1) with BLAKE2s's rotations 16, 12, 8, 7.
inline void mix(std::uint32_t v[16], int a, int b, int c, int d, std::uint32_t x, std::uint32_t y) {
    v[a] = v[a] + v[b] + x;
    v[d] = std::rotr(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];
    v[b] = std::rotr(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + y;
    v[d] = std::rotr(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d];
    v[b] = std::rotr(v[b] ^ v[c], 7);
}

}  // namespace

Blake2s::Blake2s(std::size_t output_size, std::span<const std::uint8_t> key)
    : h_(initial_vector), output_size_(output_size) {
    assert(output_size >= 1 && output_size <= blake2s_max_output);
    assert(key.size() <= blake2s_max_key);
    // Parameter block word 0: digest length, key length, fanout 1, depth 1 (sequential mode).
    h_[0] ^= 0x01010000u ^ (static_cast<std::uint32_t>(key.size()) << 8) ^
             static_cast<std::uint32_t>(output_size);
    if (!key.empty()) {
        // A keyed hash starts with the key padded to one full block (RFC 7693 §3.3).
        std::copy(key.begin(), key.end(), buffer_.begin());
        buffered_ = blake2s_block_size;
    }
}

Blake2s::~Blake2s() {
    wipe(h_.data(), sizeof(h_));
    wipe(buffer_.data(), buffer_.size());
}

void Blake2s::compress(const std::uint8_t* block, std::uint32_t last_block_flag) {
    std::uint32_t m[16];
    for (int i = 0; i < 16; ++i) {
        m[i] = load_le32(block + 4 * i);
    }
    std::uint32_t v[16];
    std::copy(h_.begin(), h_.end(), v);
    std::copy(initial_vector.begin(), initial_vector.end(), v + 8);
    v[12] ^= t_[0];
    v[13] ^= t_[1];
    v[14] ^= last_block_flag;
    for (const auto& s : sigma) {
        mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
        mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
        mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
        mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
        mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
        mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
        mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
        mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; ++i) {
        h_[i] ^= v[i] ^ v[i + 8];
    }
}

Blake2s& Blake2s::update(std::span<const std::uint8_t> data) {
    const std::uint8_t* in = data.data();
    std::size_t remaining = data.size();
    while (remaining > 0) {
        // The final block must be compressed with the last-block flag, so a full buffer is
        // only compressed once more input proves it is not the last.
        if (buffered_ == blake2s_block_size) {
            t_[0] += blake2s_block_size;
            t_[1] += (t_[0] < blake2s_block_size);
            compress(buffer_.data(), 0);
            buffered_ = 0;
        }
        std::size_t take = std::min(remaining, blake2s_block_size - buffered_);
        std::memcpy(buffer_.data() + buffered_, in, take);
        buffered_ += take;
        in += take;
        remaining -= take;
    }
    return *this;
}

void Blake2s::finish(std::uint8_t* out) {
    t_[0] += static_cast<std::uint32_t>(buffered_);
    t_[1] += (t_[0] < buffered_);
    std::fill(buffer_.begin() + buffered_, buffer_.end(), 0);
    compress(buffer_.data(), 0xFFFFFFFFu);
    std::uint8_t full[blake2s_max_output];
    for (int i = 0; i < 8; ++i) {
        store_le32(full + 4 * i, h_[i]);
    }
    std::memcpy(out, full, output_size_);
    wipe(full, sizeof(full));
}

MacKey::MacKey(std::span<const std::uint8_t> key) : key_size_(key.size()) {
    assert(!key.empty() && key.size() <= blake2s_max_key);
    std::copy(key.begin(), key.end(), key_.begin());
    Blake2s state(mac_size, key);
    // The constructor buffered the padded key; compress it as a non-final block, exactly as
    // update() does once input follows it.
    state.t_[0] = blake2s_block_size;
    state.compress(state.buffer_.data(), 0);
    keyed_state_ = state.h_;
}

MacKey::~MacKey() {
    wipe(keyed_state_.data(), sizeof(keyed_state_));
    wipe(key_.data(), key_.size());
}

void MacKey::mac(Mac& out, std::span<const std::uint8_t> input) const {
    if (input.empty()) {
        crypto::mac(out, {key_.data(), key_size_}, input);
        return;
    }
    Blake2s state(mac_size);
    state.h_ = keyed_state_;
    state.t_ = {static_cast<std::uint32_t>(blake2s_block_size), 0};
    state.update(input).finish(out.data());
}

void hash(Hash& out, std::span<const std::uint8_t> input) {
    Blake2s(hash_size).update(input).finish(out.data());
}

void hash(Hash& out, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
    Blake2s(hash_size).update(a).update(b).finish(out.data());
}

void mac(Mac& out, std::span<const std::uint8_t> key, std::span<const std::uint8_t> input) {
    Blake2s(mac_size, key).update(input).finish(out.data());
}

void hmac(std::span<std::uint8_t, hash_size> out, std::span<const std::uint8_t> key,
          std::span<const std::uint8_t> input) {
    // Keys longer than a block are hashed first (RFC 2104); WireGuard's never are.
    std::uint8_t block_key[blake2s_block_size] = {};
    if (key.size() > blake2s_block_size) {
        Blake2s(hash_size).update(key).finish(block_key);
    } else {
        std::copy(key.begin(), key.end(), block_key);
    }
    std::uint8_t pad[blake2s_block_size];
    std::uint8_t inner[hash_size];
    for (std::size_t i = 0; i < blake2s_block_size; ++i) {
        pad[i] = block_key[i] ^ 0x36;
    }
    Blake2s(hash_size).update(pad).update(input).finish(inner);
    for (std::size_t i = 0; i < blake2s_block_size; ++i) {
        pad[i] = block_key[i] ^ 0x5c;
    }
    Blake2s(hash_size).update(pad).update(inner).finish(out.data());
    wipe(block_key, sizeof(block_key));
    wipe(pad, sizeof(pad));
    wipe(inner, sizeof(inner));
}

void kdf(std::span<const std::uint8_t> key, std::span<const std::uint8_t> input, std::uint8_t* t1,
         std::uint8_t* t2, std::uint8_t* t3) {
    std::uint8_t secret[hash_size];
    std::uint8_t output[hash_size + 1];
    hmac(std::span<std::uint8_t, hash_size>(secret), key, input);

    output[0] = 1;
    hmac(std::span<std::uint8_t, hash_size>(output, hash_size), secret,
         std::span<const std::uint8_t>(output, 1));
    if (t1 != nullptr) {
        std::memcpy(t1, output, hash_size);
    }
    if (t2 != nullptr || t3 != nullptr) {
        output[hash_size] = 2;
        hmac(std::span<std::uint8_t, hash_size>(output, hash_size), secret,
             std::span<const std::uint8_t>(output, hash_size + 1));
        if (t2 != nullptr) {
            std::memcpy(t2, output, hash_size);
        }
    }
    if (t3 != nullptr) {
        output[hash_size] = 3;
        hmac(std::span<std::uint8_t, hash_size>(output, hash_size), secret,
             std::span<const std::uint8_t>(output, hash_size + 1));
        std::memcpy(t3, output, hash_size);
    }
    wipe(secret, sizeof(secret));
    wipe(output, sizeof(output));
}

}  // namespace meshgate::crypto
