// The AVX2 checksum is held to DPDK's portable one over every length a datagram can have
// around the MTU, at every alignment, and with the byte patterns that stress carries.
#include "dataplane/checksum.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace meshgate::dataplane {
namespace {

std::vector<std::uint8_t> buffer(std::size_t length, std::mt19937& rng, bool all_ones) {
    std::vector<std::uint8_t> bytes(length + 8);
    for (auto& byte : bytes) {
        byte = all_ones ? 0xFF : static_cast<std::uint8_t>(rng());
    }
    return bytes;
}

TEST(Checksum, Avx2MatchesPortableAtEveryLengthAndAlignment) {
    if (!have_avx2_sum()) {
        GTEST_SKIP() << "CPU without AVX2";
    }
    std::mt19937 rng(7);
    for (bool all_ones : {false, true}) {
        for (std::size_t length = 0; length <= 1600; ++length) {
            auto bytes = buffer(length, rng, all_ones);
            for (std::size_t offset = 0; offset < 4; ++offset) {
                const std::uint8_t* data = bytes.data() + offset;
                ASSERT_EQ(fold_sum(raw_sum_avx2(data, length)),
                          fold_sum(raw_sum_portable(data, length)))
                    << "length " << length << " offset " << offset;
            }
        }
    }
}

TEST(Checksum, LargestDatagramDoesNotOverflow) {
    std::mt19937 rng(9);
    auto bytes = buffer(65535, rng, true);
    EXPECT_EQ(fold_sum(raw_sum(bytes.data(), 65535)),
              fold_sum(raw_sum_portable(bytes.data(), 65535)));
}

TEST(Checksum, PiecesAddUp) {
    // A sum over a buffer equals the sums of an even-length head and the rest (how the UDP
    // checksum adds a pseudo-header to header and payload).
    std::mt19937 rng(11);
    auto bytes = buffer(1420, rng, false);
    std::uint32_t whole = fold_sum(raw_sum(bytes.data(), 1420));
    std::uint32_t parts =
        fold_sum(raw_sum(bytes.data(), 40)) + fold_sum(raw_sum(bytes.data() + 40, 1380));
    EXPECT_EQ(fold_sum(whole), fold_sum(parts));
}

}  // namespace
}  // namespace meshgate::dataplane
