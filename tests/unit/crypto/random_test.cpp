#include "crypto/random.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

namespace meshgate::crypto {
namespace {

using Block = std::array<std::uint8_t, 32>;

Block next_block() {
    Block block{};
    random_bytes(block.data(), block.size());
    return block;
}

TEST(Random, SuccessiveRequestsDiffer) {
    std::set<Block> seen;
    // 2,000 blocks cross several refills and the 1 MiB reseed is not reached; any repeat or
    // an all-zero block would mean the stream or the erasure is broken.
    for (int i = 0; i < 2000; ++i) {
        Block block = next_block();
        EXPECT_NE(block, Block{});
        EXPECT_TRUE(seen.insert(block).second) << "repeated output at request " << i;
    }
}

TEST(Random, BitsAreBalanced) {
    std::vector<std::uint8_t> bytes(1 << 16);
    random_bytes(bytes.data(), bytes.size());
    std::uint64_t ones = 0;
    for (std::uint8_t byte : bytes) {
        ones += static_cast<std::uint64_t>(std::popcount(byte));
    }
    const double fraction = static_cast<double>(ones) / (8.0 * bytes.size());
    // 524,288 bits: a fair source lands within 0.5% of one half with overwhelming odds.
    EXPECT_NEAR(fraction, 0.5, 0.005);
}

TEST(Random, RequestsLargerThanOneRefillAreFilledCompletely) {
    std::vector<std::uint8_t> bytes(4096 + 7, 0);
    random_bytes(bytes.data(), bytes.size());
    // The tail must be written too: 64 zero bytes in a row would be a 2^-512 event.
    EXPECT_NE(std::vector<std::uint8_t>(bytes.end() - 64, bytes.end()),
              std::vector<std::uint8_t>(64, 0));
}

TEST(Random, ThreadsGetIndependentStreams) {
    Block here = next_block();
    Block there{};
    std::thread([&] { there = next_block(); }).join();
    EXPECT_NE(here, there);
}

// Without reseeding in the child, parent and child would hand out the same bytes next:
// two processes generating the same keys or nonces.
TEST(Random, ForkedChildDoesNotRepeatTheParentsStream) {
    (void)next_block();  // the parent's generator is seeded and holds buffered output
    int pipe_ends[2];
    ASSERT_EQ(pipe(pipe_ends), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        Block block = next_block();
        ssize_t written = write(pipe_ends[1], block.data(), block.size());
        _exit(written == static_cast<ssize_t>(block.size()) ? 0 : 1);
    }
    close(pipe_ends[1]);
    Block from_child{};
    ASSERT_EQ(read(pipe_ends[0], from_child.data(), from_child.size()),
              static_cast<ssize_t>(from_child.size()));
    close(pipe_ends[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_NE(next_block(), from_child);
}

}  // namespace
}  // namespace meshgate::crypto
