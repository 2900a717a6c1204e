// PacedPrefetch: how many lines a set of ranges covers, and how a call's steps share them.
// Prefetching itself is invisible to a test; what it may never do is run past its ranges or
// leave lines behind, so the counts are what is checked.
#include "crypto/paced_prefetch.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace meshgate::crypto {
namespace {

struct alignas(64) Buffer {
    std::array<std::uint8_t, 4096> bytes{};
};

TEST(PacedPrefetch, NothingToFetchIsANoOp) {
    PacedPrefetch nothing;
    nothing.plan(10);
    nothing.step();
    nothing.finish();
    EXPECT_EQ(nothing.lines_left(), 0u);
}

TEST(PacedPrefetch, CountsTheLinesEachRangeStartsWith) {
    static_assert(PacedPrefetch::lead_lines == 6, "the counts below");
    Buffer buffer;
    const std::uint8_t* base = buffer.bytes.data();
    const std::vector<PrefetchRange> ranges = {
        {base, 64},             // exactly one line
        {base + 60, 10},        // straddles two
        {base + 128, 0},        // empty: nothing
        {base + 200, 1},        // one byte, one line
        {base + 1000, 6 * 64},  // six lines, but not from a line start: seven touched, six asked
        {base + 64, 1420},      // a 1420-byte payload (23 lines): its first six
    };
    EXPECT_EQ(PacedPrefetch(ranges).lines_left(), 1u + 2u + 0u + 1u + 6u + 6u);
}

TEST(PacedPrefetch, StepsShareWhatIsLeftEvenly) {
    Buffer buffer;
    const PrefetchRange ranges[] = {{buffer.bytes.data(), 5 * 64},
                                    {buffer.bytes.data() + 2048, 5 * 64}};
    PacedPrefetch prefetch(ranges);
    prefetch.plan(4);
    std::vector<std::uint32_t> left;
    for (int i = 0; i < 4; ++i) {
        prefetch.step();
        left.push_back(prefetch.lines_left());
    }
    EXPECT_EQ(left, (std::vector<std::uint32_t>{7, 4, 2, 0}));
    prefetch.step();  // past the plan: nothing left, nothing done
    EXPECT_EQ(prefetch.lines_left(), 0u);
}

TEST(PacedPrefetch, StepsCrossRangesAndStillShareEvenly) {
    Buffer first, second, third;
    // 3 + 6 + 5 + 2 lines: steps of 4, 3, 3, 3, 3 cross from range to range mid-step.
    const PrefetchRange ranges[] = {{first.bytes.data() + 10, 150},
                                    {second.bytes.data(), 6 * 64},
                                    {second.bytes.data() + 1024, 5 * 64},
                                    {third.bytes.data() + 63, 2}};
    PacedPrefetch prefetch(ranges);
    ASSERT_EQ(prefetch.lines_left(), 16u);
    prefetch.plan(5);
    std::vector<std::uint32_t> left;
    for (int i = 0; i < 5; ++i) {
        prefetch.step();
        left.push_back(prefetch.lines_left());
    }
    EXPECT_EQ(left, (std::vector<std::uint32_t>{12, 9, 6, 3, 0}));
    prefetch.finish();
    EXPECT_EQ(prefetch.lines_left(), 0u);
}

TEST(PacedPrefetch, AStepPastThePlanOrFinishIssuesTheRest) {
    Buffer first, second;
    const PrefetchRange ranges[] = {{first.bytes.data(), 300}, {second.bytes.data() + 1, 700}};
    PacedPrefetch unplanned(ranges);
    EXPECT_EQ(unplanned.lines_left(), 5u + 6u);
    unplanned.step();  // no plan: everything at once
    EXPECT_EQ(unplanned.lines_left(), 0u);

    PacedPrefetch ended_early(ranges);
    ended_early.plan(100);
    ended_early.step();
    EXPECT_EQ(ended_early.lines_left(), 10u);
    ended_early.finish();
    EXPECT_EQ(ended_early.lines_left(), 0u);
}

}  // namespace
}  // namespace meshgate::crypto
