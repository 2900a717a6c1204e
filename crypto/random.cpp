#include "crypto/random.hpp"

#include <pthread.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "crypto/secure.hpp"

namespace meshgate::crypto {
namespace {

constexpr std::size_t key_bytes = crypto_stream_chacha20_ietf_KEYBYTES;
constexpr std::size_t stream_bytes = 512;  // one refill: the next key, then output
constexpr std::size_t output_bytes = stream_bytes - key_bytes;
// Reseeding bounds how much output depends on one seed; the kernel reseeds its CRNG on a
// similar scale. Rare enough to cost nothing measurable.
constexpr std::uint64_t reseed_after_bytes = 1u << 20;

// Bumped in a child process after fork(): parent and child must never share a stream.
std::atomic<std::uint64_t> fork_generation{0};
std::once_flag fork_handler_once;

void on_fork_child() {
    fork_generation.fetch_add(1, std::memory_order_relaxed);
}

struct Generator {
    std::uint8_t key[key_bytes];
    std::uint8_t stream[stream_bytes];
    std::size_t available = 0;  // unread output bytes at the end of `stream`
    std::uint64_t since_seed = 0;
    std::uint64_t generation = 0;
    bool seeded = false;

    ~Generator() {
        wipe(key, sizeof(key));
        wipe(stream, sizeof(stream));
    }

    void seed() {
        std::call_once(fork_handler_once, [] { pthread_atfork(nullptr, nullptr, on_fork_child); });
        randombytes_buf(key, sizeof(key));
        available = 0;
        since_seed = 0;
        generation = fork_generation.load(std::memory_order_relaxed);
        seeded = true;
    }

    // Fast key erasure: the first bytes of the new stream replace the key that made it, so
    // a later compromise of the state reveals nothing already handed out.
    void refill() {
        static constexpr std::uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {};
        crypto_stream_chacha20_ietf(stream, sizeof(stream), nonce, key);
        std::memcpy(key, stream, key_bytes);
        wipe(stream, key_bytes);
        available = output_bytes;
    }

    void fill(std::uint8_t* out, std::size_t size) {
        if (!seeded || since_seed >= reseed_after_bytes ||
            generation != fork_generation.load(std::memory_order_relaxed)) {
            seed();
        }
        since_seed += size;
        while (size > 0) {
            if (available == 0) {
                refill();
            }
            const std::size_t take = std::min(size, available);
            std::uint8_t* from = stream + stream_bytes - available;
            std::memcpy(out, from, take);
            wipe(from, take);
            available -= take;
            out += take;
            size -= take;
        }
    }
};

thread_local Generator generator;

}  // namespace

void random_bytes(void* out, std::size_t size) {
    generator.fill(static_cast<std::uint8_t*>(out), size);
}

}  // namespace meshgate::crypto
