// The portable backend: libsodium, one job at a time. It is the reference every other
// backend is tested against, and the path taken on CPUs without AVX-512.
#include <sodium.h>

#include <cstring>

#include "crypto/batch_aead.hpp"
#include "crypto/secure.hpp"

namespace meshgate::crypto::sodium {
namespace {

struct Nonce {
    std::uint8_t bytes[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = {};
    explicit Nonce(std::uint64_t counter) {
        for (int i = 0; i < 8; ++i) {
            bytes[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
        }
    }
};

}  // namespace

void seal(AeadJob* jobs, unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
        const AeadJob& job = jobs[i];
        Nonce nonce(job.counter);
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(job.output, job.tag, nullptr, job.input,
                                                           job.length, nullptr, 0, nullptr,
                                                           nonce.bytes, job.key);
    }
}

JobMask open(AeadJob* jobs, unsigned count) {
    JobMask authentic = 0;
    for (unsigned i = 0; i < count; ++i) {
        const AeadJob& job = jobs[i];
        Nonce nonce(job.counter);
        // libsodium verifies the tag before it decrypts and leaves output alone on failure;
        // the wipe makes the "no plaintext on failure" contract hold for every backend alike.
        if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(job.output, nullptr, job.input,
                                                               job.length, job.tag, nullptr, 0,
                                                               nonce.bytes, job.key) == 0) {
            authentic |= JobMask{1} << i;
        } else {
            wipe(job.output, job.length);
        }
    }
    return authentic;
}

}  // namespace meshgate::crypto::sodium
