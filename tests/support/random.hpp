// Deterministic random bytes for tests: seeded, so a failure reproduces.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace meshgate::test {

inline std::vector<std::uint8_t> random_bytes(std::mt19937_64& rng, std::size_t size) {
    std::vector<std::uint8_t> out(size);
    for (auto& byte : out) {
        byte = static_cast<std::uint8_t>(rng());
    }
    return out;
}

}  // namespace meshgate::test
