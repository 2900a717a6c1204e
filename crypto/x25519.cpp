#include "crypto/x25519.hpp"

#include <sodium.h>

#include <algorithm>

#include "crypto/x25519_ifma.hpp"

namespace meshgate::crypto {

PrivateKey generate_private_key() {
    PrivateKey key;
    random_bytes(key.data(), key.size());
    // Clamp (RFC 7748 §5) so the stored form equals what `wg genkey` writes.
    key.data()[0] &= 248;
    key.data()[31] &= 127;
    key.data()[31] |= 64;
    return key;
}

PublicKey derive_public_key(const PrivateKey& private_key) {
    PublicKey public_key{};
    crypto_scalarmult_curve25519_base(public_key.data(), private_key.data());
    return public_key;
}

bool dh(SharedSecret& out, const PrivateKey& private_key, const PublicKey& public_key) {
    // libsodium already returns -1 for an all-zero result; the explicit check keeps the rule
    // visible and independent of the library version.
    if (crypto_scalarmult_curve25519(out.data(), private_key.data(), public_key.data()) != 0 ||
        out.is_zero()) {
        out.clear();
        return false;
    }
    return true;
}

namespace {

// Whether a final partial group (fewer than eight jobs) should go to libsodium instead: an
// eight-lane pass costs the same however many lanes are busy, 1.6-2 of libsodium's
// variable-base DHs, while libsodium's fixed-base public key costs about a third of one
// (bench/RESULTS.md: x25519/batch/8 against x25519/dh; 11.3 against 29.8 us). In those units:
constexpr int sodium_dh_cost = 3, sodium_public_key_cost = 1, ifma_pass_cost = 6;

bool cheaper_on_sodium(std::span<const DhJob> jobs) {
    int cost = 0;
    for (const DhJob& job : jobs) {
        cost += job.point != nullptr ? sodium_dh_cost : sodium_public_key_cost;
    }
    return cost < ifma_pass_cost;
}

// The rule dh() applies, for both kinds of job: an all-zero result is a failure.
void finish(DhJob& job) {
    job.ok = !crypto::is_zero(job.out, key_size);
    if (!job.ok) {
        wipe(job.out, key_size);
    }
}

void run_sodium(DhJob& job) {
    const std::uint8_t* key = job.private_key->data();
    int failed = job.point != nullptr
                     ? crypto_scalarmult_curve25519(job.out, key, job.point->data())
                     : crypto_scalarmult_curve25519_base(job.out, key);
    if (failed != 0) {
        wipe(job.out, key_size);  // libsodium may return early without writing
    }
    finish(job);
}

void run_ifma(std::span<DhJob> jobs) {
    std::uint8_t* out[x25519_ifma::lanes] = {};
    const std::uint8_t* scalars[x25519_ifma::lanes] = {};
    const std::uint8_t* points[x25519_ifma::lanes] = {};
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        out[i] = jobs[i].out;
        scalars[i] = jobs[i].private_key->data();
        points[i] = jobs[i].point != nullptr ? jobs[i].point->data() : nullptr;
    }
    x25519_ifma::scalarmult_x8(out, scalars, points, static_cast<unsigned>(jobs.size()));
    for (DhJob& job : jobs) {
        finish(job);
    }
}

}  // namespace

void dh_batch(std::span<DhJob> jobs, const CpuFeatures& cpu) {
    const bool ifma = cpu.has_avx512_core() && cpu.avx512ifma;
    while (!jobs.empty()) {
        std::size_t n = std::min<std::size_t>(jobs.size(), x25519_ifma::lanes);
        if (ifma && (n == x25519_ifma::lanes || !cheaper_on_sodium(jobs.first(n)))) {
            run_ifma(jobs.first(n));
        } else {
            std::for_each(jobs.begin(), jobs.begin() + n, run_sodium);
        }
        jobs = jobs.subspan(n);
    }
}

}  // namespace meshgate::crypto
