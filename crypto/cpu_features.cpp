#include "crypto/cpu_features.hpp"

#include <cpuid.h>

#include <cstdlib>
#include <string_view>

namespace meshgate::crypto {

CpuFeatures CpuFeatures::detect_hardware() {
    __builtin_cpu_init();
    CpuFeatures cpu;
    cpu.avx2 = __builtin_cpu_supports("avx2");
    cpu.avx512f = __builtin_cpu_supports("avx512f");
    cpu.avx512bw = __builtin_cpu_supports("avx512bw");
    cpu.avx512vl = __builtin_cpu_supports("avx512vl");
    cpu.avx512ifma = __builtin_cpu_supports("avx512ifma");
    cpu.avx512vbmi = __builtin_cpu_supports("avx512vbmi");
    // Not every compiler's __builtin_cpu_supports knows these two: CPUID leaf 7, ECX bits 9
    // and 10. (Only reported; no code path depends on them yet.)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0) {
        cpu.vaes = (ecx >> 9) & 1;
        cpu.vpclmulqdq = (ecx >> 10) & 1;
    }
    return cpu;
}

CpuFeatures CpuFeatures::detect() {
    const char* mode = std::getenv("MESHGATE_CRYPTO");
    if (mode != nullptr && std::string_view(mode) == "portable") {
        return portable();
    }
    return detect_hardware();
}

std::string CpuFeatures::describe() const {
    std::string out;
    auto add = [&out](bool present, const char* name) {
        if (present) {
            out += out.empty() ? "" : " ";
            out += name;
        }
    };
    add(avx2, "avx2");
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512vl, "avx512vl");
    add(avx512ifma, "avx512ifma");
    add(avx512vbmi, "avx512vbmi");
    add(vaes, "vaes");
    add(vpclmulqdq, "vpclmulqdq");
    return out.empty() ? "portable" : out;
}

}  // namespace meshgate::crypto
