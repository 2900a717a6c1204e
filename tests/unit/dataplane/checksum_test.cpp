// The AVX2 checksum is held to DPDK's portable one over every length a datagram can have
// around the MTU, at every alignment, and with the byte patterns that stress carries.
#include "dataplane/checksum.hpp"

#include <gtest/gtest.h>

#include <cstring>
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

// The inline 20-byte IPv4 header check agrees with the general sum on random headers (each
// given its right checksum, then each bit flipped), on all-ones headers (the carries), and
// with options, which take the general path.
TEST(Checksum, Ipv4HeaderCheckAgreesWithTheGeneralSum) {
    std::mt19937 rng(11);
    for (std::size_t length : {20u, 24u, 60u}) {
        for (int trial = 0; trial < 200; ++trial) {
            auto bytes = buffer(length, rng, trial == 0);
            bytes[10] = bytes[11] = 0;
            const std::uint16_t checksum =
                static_cast<std::uint16_t>(~fold_sum(raw_sum_portable(bytes.data(), length)));
            std::memcpy(&bytes[10], &checksum, 2);
            ASSERT_TRUE(ipv4_header_checksum_ok(bytes.data(), static_cast<std::uint32_t>(length)))
                << "length " << length << " trial " << trial;
            for (std::size_t bit = 0; bit < length * 8; ++bit) {
                bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
                const bool expected = fold_sum(raw_sum_portable(bytes.data(), length)) == 0xFFFF;
                ASSERT_EQ(ipv4_header_checksum_ok(bytes.data(), static_cast<std::uint32_t>(length)),
                          expected)
                    << "length " << length << " bit " << bit;
                bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
            }
        }
    }
}

}  // namespace
}  // namespace meshgate::dataplane
