// Random bytes for keys, indexes, nonces and jitter.
//
// The system CSPRNG (getrandom) costs a system call per request, and a cookie reply under a
// handshake flood asks for a fresh nonce every time: that call was a tenth of the reply's
// cost. So each thread keeps a ChaCha20 generator with fast key erasure (the construction
// of OpenBSD's arc4random and the kernel's own CRNG): every refill derives the next key
// from the stream, bytes are wiped as they are handed out, and the key is reseeded from the
// system CSPRNG after a fixed amount of output and in a child after fork().
#pragma once

#include <cstddef>

namespace meshgate::crypto {

// Fills `out` with `size` cryptographically secure random bytes. Thread-safe (one
// generator per thread).
void random_bytes(void* out, std::size_t size);

}  // namespace meshgate::crypto
