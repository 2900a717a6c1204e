// The batch AEAD engine: the data plane's only crypto API.
//
// A worker gathers one burst's WireGuard transport-data jobs and seals or opens them in one
// call. Each job is ChaCha20-Poly1305 (RFC 8439) with no additional data and WireGuard's
// nonce: 4 zero bytes followed by the 64-bit little-endian counter (whitepaper §5.4.6).
// Keys and lengths may differ from job to job.
//
// The engine picks a backend per job: the 16-lane AVX-512 multi-buffer code for small
// packets, Intel ipsec-mb for large ones, libsodium when the CPU lacks AVX-512 (or when told
// to, see Options). Thresholds come from bench/crypto_bench, recorded in bench/RESULTS.md.
//
// Threads: a BatchAead holds per-thread scratch state (the ipsec-mb manager), so each worker
// owns its own instance; one instance must not be used by two threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "crypto/cpu_features.hpp"
#include "crypto/paced_prefetch.hpp"

namespace meshgate::crypto {

inline constexpr unsigned max_batch_jobs = 64;
inline constexpr std::size_t aead_key_size = 32;
inline constexpr std::size_t aead_tag_size = 16;
inline constexpr std::uint32_t max_job_length = 65535;

// One packet's AEAD work. Plain pointers: the engine neither owns nor retains them.
struct AeadJob {
    const std::uint8_t* key;  // 32 bytes
    std::uint64_t counter;    // nonce = 0x00000000 || le64(counter)
    const std::uint8_t* input;
    std::uint8_t* output;  // may equal input (in place); must not otherwise overlap it
    std::uint32_t length;  // bytes of plaintext/ciphertext, 0..65535, tag excluded
    std::uint8_t* tag;     // 16 bytes: seal writes it, open reads it
};

// Bit i set = job i authenticated. A job whose bit is clear has its output zeroed: the
// engine never leaves unauthenticated plaintext behind for a caller to mistake as valid.
using JobMask = std::uint64_t;

inline constexpr JobMask all_jobs(unsigned count) {
    return count >= 64 ? ~JobMask{0} : ((JobMask{1} << count) - 1);
}

enum class Backend : std::uint8_t {
    avx512,   // crypto/backend_avx512.cpp: 16 packets in 16 lanes
    ipsecmb,  // crypto/backend_ipsecmb.cpp: Intel ipsec-mb job API, AVX-512 manager
    sodium,   // crypto/backend_sodium.cpp: libsodium, one packet at a time (portable)
};

std::string_view backend_name(Backend backend);
std::optional<Backend> backend_from_name(std::string_view name);

// ---- backends: all share one contract ----------------------------------------------------
// seal: writes output and tag for every job.
// open: verifies each tag in constant time; returns the mask of authentic jobs, decrypts
//       those, and zeroes the output of the others.
// count <= max_batch_jobs. Callers guarantee the CPU supports the backend.

namespace avx512 {
bool supported(const CpuFeatures& cpu);
// Both fetch `upcoming` between their ChaCha20 blocks (crypto/paced_prefetch.hpp); an empty
// PacedPrefetch fetches nothing.
void seal(AeadJob* jobs, unsigned count, PacedPrefetch& upcoming);
JobMask open(AeadJob* jobs, unsigned count, PacedPrefetch& upcoming);
}  // namespace avx512

namespace sodium {
void seal(AeadJob* jobs, unsigned count);
JobMask open(AeadJob* jobs, unsigned count);
}  // namespace sodium

// ipsec-mb keeps a manager (job queue, scratch) per thread, so it is an object.
class IpsecMb {
  public:
    static bool supported(const CpuFeatures& cpu);
    explicit IpsecMb(const CpuFeatures& cpu);
    ~IpsecMb();
    IpsecMb(const IpsecMb&) = delete;
    IpsecMb& operator=(const IpsecMb&) = delete;

    void seal(AeadJob* jobs, unsigned count);
    JobMask open(AeadJob* jobs, unsigned count);

  private:
    struct Manager;
    std::unique_ptr<Manager> manager_;
};

// ---- the engine --------------------------------------------------------------------------
class BatchAead {
  public:
    struct Options {
        // Use this backend for every job (tests, benchmarks). Unset: choose per job.
        std::optional<Backend> force;
        // Jobs of at most this many bytes go to the multi-buffer AVX-512 path, longer ones
        // to ipsec-mb, unless a burst holds only long jobs of one block count (then all go to
        // AVX-512: no lane waits for another). Measured: see bench/RESULTS.md.
        std::uint32_t multibuffer_max_length = default_multibuffer_max_length;
    };
    static constexpr std::uint32_t default_multibuffer_max_length = 1024;

    explicit BatchAead(const CpuFeatures& cpu, Options options);
    explicit BatchAead(const CpuFeatures& cpu) : BatchAead(cpu, Options{}) {}
    ~BatchAead();

    // `upcoming`: what the caller will seal or open next (the next burst's packets), fetched
    // toward L2 while this call computes. Only the AVX-512 backend paces it; the others, whose
    // steps this engine does not see, leave it unfetched.
    void seal(std::span<AeadJob> jobs, std::span<const PrefetchRange> upcoming = {});
    JobMask open(std::span<AeadJob> jobs, std::span<const PrefetchRange> upcoming = {});

    // Which backend a job of this length goes to (for logs, tests and benchmarks).
    Backend backend_for(std::uint32_t length) const;
    bool has(Backend backend) const;

  private:
    template <bool Open>
    JobMask run(std::span<AeadJob> jobs, PacedPrefetch& upcoming);

    bool have_avx512_;
    std::unique_ptr<IpsecMb> ipsecmb_;
    Options options_;
};

}  // namespace meshgate::crypto
