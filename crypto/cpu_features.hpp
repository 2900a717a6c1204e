// CPU features that choose crypto code paths, detected once at start and passed in.
#pragma once

#include <string>

namespace meshgate::crypto {

struct CpuFeatures {
    bool avx2 = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512ifma = false;
    bool avx512vbmi = false;
    bool vaes = false;
    bool vpclmulqdq = false;

    // What this CPU has, less whatever MESHGATE_CRYPTO=portable takes away: with that
    // variable set, every SIMD flag is cleared so the libsodium path runs, as on a CPU
    // without AVX-512.
    static CpuFeatures detect();
    // The CPU as it is, ignoring the environment.
    static CpuFeatures detect_hardware();
    // Nothing at all: the portable path.
    static CpuFeatures portable() { return {}; }

    bool has_avx512_core() const { return avx512f && avx512bw && avx512vl; }
    std::string describe() const;
};

}  // namespace meshgate::crypto
