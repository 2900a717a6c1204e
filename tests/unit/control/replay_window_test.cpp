// The replay window, table-driven as the kernel's selftest, plus a random differential run
// against a set-based reference.
#include "control/replay_window.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

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

// The set-based reference: a counter is new when it was never recorded and is not `depth` or
// more below the greatest recorded one.
class ReferenceWindow {
  public:
    bool check(std::uint64_t counter) const {
        return !seen_.contains(counter) &&
               (seen_.empty() || counter > greatest_ || greatest_ - counter < depth);
    }
    void update(std::uint64_t counter) {
        seen_.insert(counter);
        greatest_ = std::max(greatest_, counter);
    }

  private:
    std::set<std::uint64_t> seen_;
    std::uint64_t greatest_ = 0;
};

void expect_matches_reference(const std::vector<std::uint64_t>& counters) {
    ReplayWindow window;
    ReferenceWindow reference;
    for (std::size_t i = 0; i < counters.size(); ++i) {
        const std::uint64_t counter = counters[i];
        const bool expected = reference.check(counter);
        ASSERT_EQ(window.check(counter), expected) << "step " << i << " counter " << counter;
        if (expected) {
            window.update(counter);
            reference.update(counter);
        }
    }
}

TEST(ReplayWindow, MatchesReferenceUnderReordering) {
    CounterStream stream(6479, false);
    std::vector<std::uint64_t> counters;
    for (int i = 0; i < 200000; ++i) {
        counters.push_back(stream.next());
    }
    expect_matches_reference(counters);
}

// Counters in order are recorded as a run below the top and written into the bitmap only when
// the top jumps past a gap: long runs (longer than the window), then late counters, copies
// and jumps, each checked against the reference.
TEST(ReplayWindow, MatchesReferenceWithLongRunsInOrder) {
    std::mt19937_64 rng(8192);
    std::vector<std::uint64_t> counters;
    std::uint64_t next = 0;
    for (int i = 0; i < 300000; ++i) {
        const unsigned roll = static_cast<unsigned>(rng() % 1000);
        if (roll < 975 || next == 0) {
            counters.push_back(next++);
        } else if (roll < 990) {  // late, up to twice the window behind
            counters.push_back(next - 1 - rng() % std::min<std::uint64_t>(next, 2 * depth));
        } else if (roll < 995) {  // a copy of one of the last few
            counters.push_back(next - 1 - rng() % std::min<std::uint64_t>(next, 8));
        } else {  // a jump ahead: sometimes within the window, sometimes past it
            next += 1 + rng() % (roll < 998 ? 100 : 20000);
            counters.push_back(next++);
        }
    }
    expect_matches_reference(counters);
}

TEST(ReplayWindow, RunsAtTheWindowsEdges) {
    // A run far longer than the window, its top in the middle of a bitmap word: the run is
    // then written into the bitmap from a counter in the word below the window, which shares
    // its ring word with the top (written, it would mark the top word's later counters seen).
    const std::uint64_t top = 3 * depth + 36;
    std::vector<std::uint64_t> counters;
    for (std::uint64_t c = 0; c <= top; ++c) {
        counters.push_back(c);
    }
    // Just inside and just behind the window, and the run's own counters again.
    for (std::uint64_t back : {depth - 1, depth, depth + 1, std::uint64_t{0}, std::uint64_t{1},
                               std::uint64_t{63}, std::uint64_t{64}, depth - 64}) {
        counters.push_back(top - back);
    }
    // A gap: the run is written into the bitmap, then the late counters of the run and of the
    // gap are told apart.
    counters.push_back(top + 100);
    for (std::uint64_t c = top - depth + 150; c <= top + 100; c += 7) {
        counters.push_back(c);
    }
    for (std::uint64_t c = top + 1; c < top + 100; ++c) {  // every counter of the gap
        counters.push_back(c);
    }
    // And a jump past the whole window, then back into the old run.
    counters.push_back(top + 100 + 2 * ReplayWindow::bits);
    counters.push_back(top);
    counters.push_back(top + 100 + 2 * ReplayWindow::bits - 1);
    expect_matches_reference(counters);
}

}  // namespace
}  // namespace meshgate::control
