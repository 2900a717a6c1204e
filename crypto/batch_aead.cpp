// Backend choice per job. A burst is split into the jobs for the multi-buffer path and the
// jobs for ipsec-mb; each group is handed to its backend in one call, and the per-job results
// are put back in the caller's order.
#include "crypto/batch_aead.hpp"

#include <array>
#include <cassert>

namespace meshgate::crypto {

std::string_view backend_name(Backend backend) {
    switch (backend) {
        case Backend::avx512:
            return "avx512";
        case Backend::ipsecmb:
            return "ipsecmb";
        case Backend::sodium:
            return "sodium";
    }
    return "unknown";
}

std::optional<Backend> backend_from_name(std::string_view name) {
    for (Backend backend : {Backend::avx512, Backend::ipsecmb, Backend::sodium}) {
        if (backend_name(backend) == name) {
            return backend;
        }
    }
    return std::nullopt;
}

BatchAead::BatchAead(const CpuFeatures& cpu, Options options)
    : have_avx512_(avx512::supported(cpu)), options_(options) {
    if (IpsecMb::supported(cpu)) {
        ipsecmb_ = std::make_unique<IpsecMb>(cpu);
    }
    // A forced backend the CPU cannot run falls back to the portable one: forcing is for
    // tests and benchmarks, and must never make the engine compute garbage.
    if (options_.force && !has(*options_.force)) {
        options_.force = Backend::sodium;
    }
}

BatchAead::~BatchAead() = default;

bool BatchAead::has(Backend backend) const {
    switch (backend) {
        case Backend::avx512:
            return have_avx512_;
        case Backend::ipsecmb:
            return ipsecmb_ != nullptr;
        case Backend::sodium:
            return true;
    }
    return false;
}

Backend BatchAead::backend_for(std::uint32_t length) const {
    if (options_.force) {
        return *options_.force;
    }
    if (have_avx512_ && (length <= options_.multibuffer_max_length || !ipsecmb_)) {
        return Backend::avx512;
    }
    if (ipsecmb_) {
        return Backend::ipsecmb;
    }
    return Backend::sodium;
}

namespace {

// All jobs need the same number of ChaCha20 blocks.
bool uniform_length(std::span<const AeadJob> jobs) {
    for (const AeadJob& job : jobs) {
        if ((job.length + 63) / 64 != (jobs[0].length + 63) / 64) {
            return false;
        }
    }
    return true;
}

}  // namespace

template <bool Open>
JobMask BatchAead::run(std::span<AeadJob> jobs, PacedPrefetch& upcoming) {
    assert(jobs.size() <= max_batch_jobs);
    auto count = static_cast<unsigned>(jobs.size());
    auto dispatch = [this, &upcoming](Backend backend, AeadJob* group, unsigned n) -> JobMask {
        switch (backend) {
            case Backend::avx512:
                return Open ? avx512::open(group, n, upcoming)
                            : (avx512::seal(group, n, upcoming), all_jobs(n));
            case Backend::ipsecmb:
                return Open ? ipsecmb_->open(group, n) : (ipsecmb_->seal(group, n), all_jobs(n));
            case Backend::sodium:
                break;
        }
        return Open ? sodium::open(group, n) : (sodium::seal(group, n), all_jobs(n));
    };
    if (options_.force || !have_avx512_ || !ipsecmb_) {
        return dispatch(backend_for(0), jobs.data(), count);
    }

    // Mixed burst: gather each group contiguously (jobs are small PODs), run it, and scatter
    // the result bits back to the caller's positions.
    std::array<AeadJob, max_batch_jobs> small, large;
    std::array<std::uint8_t, max_batch_jobs> small_at, large_at;
    unsigned small_count = 0, large_count = 0;
    for (unsigned i = 0; i < count; ++i) {
        if (jobs[i].length <= options_.multibuffer_max_length) {
            small_at[small_count] = static_cast<std::uint8_t>(i);
            small[small_count++] = jobs[i];
        } else {
            large_at[large_count] = static_cast<std::uint8_t>(i);
            large[large_count++] = jobs[i];
        }
    }
    if (large_count == 0) {
        return dispatch(Backend::avx512, jobs.data(), count);
    }
    if (small_count == 0 && uniform_length(jobs)) {
        // Every lane equally long: no lane waits for another, and the multi-buffer path beats
        // ipsec-mb at every size (bench/RESULTS.md). Only mixed bursts send large jobs away.
        return dispatch(Backend::avx512, jobs.data(), count);
    }
    if (small_count == 0) {
        return dispatch(Backend::ipsecmb, jobs.data(), count);
    }
    JobMask small_result = dispatch(Backend::avx512, small.data(), small_count);
    JobMask large_result = dispatch(Backend::ipsecmb, large.data(), large_count);
    JobMask result = 0;
    for (unsigned i = 0; i < small_count; ++i) {
        result |= ((small_result >> i) & 1) << small_at[i];
    }
    for (unsigned i = 0; i < large_count; ++i) {
        result |= ((large_result >> i) & 1) << large_at[i];
    }
    return result;
}

void BatchAead::seal(std::span<AeadJob> jobs, std::span<const PrefetchRange> upcoming) {
    PacedPrefetch prefetch(upcoming);
    run<false>(jobs, prefetch);
}

JobMask BatchAead::open(std::span<AeadJob> jobs, std::span<const PrefetchRange> upcoming) {
    PacedPrefetch prefetch(upcoming);
    return run<true>(jobs, prefetch);
}

}  // namespace meshgate::crypto
