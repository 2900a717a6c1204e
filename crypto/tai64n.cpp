#include "crypto/tai64n.hpp"

#include <cstring>

namespace meshgate::crypto {
namespace {
constexpr std::uint64_t tai64_base = 0x4000000000000000ULL;  // 2^62
constexpr std::uint32_t whitener_mask = 0x1000000 - 1;       // 2^24 ns granularity
}  // namespace

Tai64n tai64n_from(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    auto since_epoch = time.time_since_epoch();
    auto whole = floor<seconds>(since_epoch);
    auto nanos =
        static_cast<std::uint32_t>(duration_cast<nanoseconds>(since_epoch - whole).count());
    nanos &= ~whitener_mask;
    std::uint64_t label = tai64_base + static_cast<std::uint64_t>(whole.count());
    Tai64n out{};
    for (int i = 0; i < 8; ++i) {
        out[i] = static_cast<std::uint8_t>(label >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; ++i) {
        out[8 + i] = static_cast<std::uint8_t>(nanos >> (24 - 8 * i));
    }
    return out;
}

bool tai64n_after(const Tai64n& a, const Tai64n& b) {
    return std::memcmp(a.data(), b.data(), a.size()) > 0;
}

}  // namespace meshgate::crypto
