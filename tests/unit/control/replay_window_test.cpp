// The replay window, table-driven as the kernel's selftest, plus a random differential run
// against a set-based reference.
#include "control/replay_window.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace meshgate::control {
namespace {

constexpr std::uint64_t depth = ReplayWindow::bits - 64;

TEST(ReplayWindow, Table) {
    struct Step {
        std::uint64_t counter;
        bool accepted;
    };
    const Step steps[] = {
        {0, true},
        {1, true},
        {1, false},
        {9, true},
        {8, true},
        {7, true},
        {7, false},
        {depth, true},
        {depth - 1, true},
        {depth - 1, false},
        {1, false},
        {3, true},
        {depth + 9, true},
        {9, false},
        {10, true},
        {depth * 3, true},
        {depth * 2, false},
        {depth * 3 - 1, true},
        {depth * 3, false},
        {ReplayWindow::reject_after_messages - 1, true},
        {ReplayWindow::reject_after_messages, false},
        {~std::uint64_t{0}, false},
    };
    ReplayWindow window;
    int line = 0;
    for (const Step& step : steps) {
        ++line;
        bool fresh = window.check(step.counter);
        EXPECT_EQ(fresh, step.accepted) << "step " << line << " counter " << step.counter;
        if (fresh) {
            window.update(step.counter);
        }
    }
}

TEST(ReplayWindow, OnlyUpdateAdvances) {
    ReplayWindow window;
    EXPECT_TRUE(window.check(100));
    // A forged packet: checked, never updated. The real one later still passes.
    EXPECT_TRUE(window.check(100));
    window.update(100);
    EXPECT_FALSE(window.check(100));
}

TEST(ReplayWindow, MatchesReferenceUnderReordering) {
    std::mt19937_64 rng(6479);
    ReplayWindow window;
    std::set<std::uint64_t> seen;
    std::uint64_t greatest = 0;
    bool any = false;
    std::uint64_t next = 0;
    for (int i = 0; i < 200000; ++i) {
        // Mostly advancing, with reordering up to twice the window and duplicates.
        std::uint64_t counter;
        switch (rng() % 4) {
            case 0:
                counter =
                    next > 0 ? next - 1 - rng() % std::min<std::uint64_t>(next, 2 * depth) : 0;
                break;
            case 1:
                counter = next + rng() % 3000;
                break;
            default:
                counter = next++;
        }
        bool expected =
            !seen.contains(counter) && (!any || counter > greatest || greatest - counter < depth);
        ASSERT_EQ(window.check(counter), expected)
            << "counter " << counter << " greatest " << greatest;
        if (expected) {
            window.update(counter);
            seen.insert(counter);
            if (!any || counter > greatest) {
                greatest = counter;
                any = true;
            }
        }
    }
}

}  // namespace
}  // namespace meshgate::control
