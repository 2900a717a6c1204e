#include "crypto/secure.hpp"

#include <sodium.h>

namespace meshgate::crypto {

void wipe(void* data, std::size_t size) {
    sodium_memzero(data, size);
}

bool equal(const void* a, const void* b, std::size_t size) {
    return sodium_memcmp(a, b, size) == 0;
}

bool is_zero(const void* data, std::size_t size) {
    return sodium_is_zero(static_cast<const unsigned char*>(data), size) == 1;
}

}  // namespace meshgate::crypto
