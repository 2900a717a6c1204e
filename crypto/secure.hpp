// Secret hygiene: wiping memory the compiler may not elide, and comparing without timing leaks.
#pragma once

#include <cstddef>

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

// True when every byte is zero, in constant time (X25519's all-zero output check).
bool is_zero(const void* data, std::size_t size);

}  // namespace meshgate::crypto
