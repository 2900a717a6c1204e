// The replay window, table-driven as the kernel's selftest, plus a random differential run
// against a set-based reference.
#include "control/replay_window.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace meshgate::control {
namespace {

constexpr std::uint64_t depth = ReplayWindow::bits - 64;

// Counters as a sender whose packets are reordered and duplicated produces them: mostly in
// order, some behind by up to twice the window (duplicates among them), some ahead. With
// `extremes`, further ahead, and now and then the stream jumps there.
class CounterStream {
  public:
    CounterStream(std::uint64_t seed, bool extremes) : rng_(seed), extremes_(extremes) {}

    std::uint64_t next() {
        std::uint64_t counter;
        switch (rng_() % 4) {
            case 0:
                counter =
                    next_ > 0 ? next_ - 1 - rng_() % std::min<std::uint64_t>(next_, 2 * depth) : 0;
                break;
            case 1:
                counter = next_ + rng_() % (extremes_ ? 20000 : 3000);
                break;
            default:
                counter = next_++;
        }
        if (extremes_ && rng_() % 1000 == 0) {
            next_ = counter + 1;  // the stream jumps
        }
        return counter;
    }

  private:
    std::mt19937_64 rng_;
    bool extremes_;
    std::uint64_t next_ = 0;
};

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

// accept() is check() then update(), as the data path's second look after a burst's pre-check:
// the same verdicts and the same state on the same sequence, duplicates included.
TEST(ReplayWindow, AcceptIsCheckThenUpdate) {
    CounterStream stream(2026, true);
    ReplayWindow accepting, reference;
    constexpr std::uint64_t limit = ReplayWindow::reject_after_messages;
    const std::uint64_t at_the_limit[] = {limit - 2, limit, limit - 1, limit + 1, limit - 2};
    for (int i = 0; i < 200000 + 5; ++i) {
        const std::uint64_t counter = i < 200000 ? stream.next() : at_the_limit[i - 200000];
        const bool expected = reference.check(counter);
        if (expected) {
            reference.update(counter);
        }
        ASSERT_EQ(accepting.accept(counter), expected) << "step " << i << " counter " << counter;
        ASSERT_EQ(accepting.greatest(), reference.greatest()) << "step " << i;
    }
    for (std::uint64_t counter = reference.greatest() - depth; counter <= reference.greatest();
         ++counter) {
        ASSERT_EQ(accepting.check(counter), reference.check(counter)) << "counter " << counter;
    }
}

TEST(ReplayWindow, MatchesReferenceUnderReordering) {
    CounterStream stream(6479, false);
    ReplayWindow window;
    std::set<std::uint64_t> seen;
    std::uint64_t greatest = 0;
    bool any = false;
    for (int i = 0; i < 200000; ++i) {
        const std::uint64_t counter = stream.next();
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
