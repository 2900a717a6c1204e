// Secret hygiene: wiping memory the compiler may not elide, and comparing without timing leaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace meshgate::crypto {

// Overwrites with zeros in a way the optimiser cannot remove (sodium_memzero).
void wipe(void* data, std::size_t size);

template <typename T>
void wipe_object(T& object) {
    wipe(&object, sizeof(object));
}

// Constant-time equality: the time taken depends only on the size, never on where (or
// whether) the buffers differ.
bool equal(const void* a, const void* b, std::size_t size);

// Constant-time equality of two 16-byte tags, inline: the batch backends compare one tag per
// packet, and a call into libsodium's byte loop cost more than the compare itself.
inline bool equal_tag(const void* a, const void* b) {
    std::uint64_t x[2], y[2];
    std::memcpy(x, a, 16);
    std::memcpy(y, b, 16);
    // Branch-free: fold every differing bit into one word, then test it once.
    volatile std::uint64_t difference = (x[0] ^ y[0]) | (x[1] ^ y[1]);
    return difference == 0;
}

// True when every byte is zero, in constant time (X25519's all-zero output check).
bool is_zero(const void* data, std::size_t size);

}  // namespace meshgate::crypto
