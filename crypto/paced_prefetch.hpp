// Fetching the memory of the next call while this one computes.
//
// A worker opens one burst while the next burst already waits in its receive lookahead. Those
// packets arrive in the last-level cache at best (DMA, or another core's writes), and an
// open's first pass, Poly1305 over the ciphertext, waits on the lines it misses: frames just
// received opened at 1.03-1.19 Mpps where the same frames opened at 1.38-1.43 once a copy had
// left them in L2 (bench/RESULTS.md, sessions 19-21). Asking for the whole next burst at once (736
// lines at 1420 B) sped the open up but stalled on the miss buffers as long as it saved. So
// the lines are asked for a few at a time, between ChaCha20 blocks, which are pure
// computation.
//
// Threads: an instance lives on one call's stack, in the calling worker.
#pragma once

#include <cstdint>
#include <span>

namespace meshgate::crypto {

// Bytes the caller will hand to the engine soon; any alignment.
struct PrefetchRange {
    const std::uint8_t* start;
    std::uint32_t length;
};

class PacedPrefetch {
  public:
    static constexpr std::uintptr_t line_size = 64;

    PacedPrefetch() = default;  // nothing to fetch
    explicit PacedPrefetch(std::span<const PrefetchRange> ranges) : ranges_(ranges) {
        for (const PrefetchRange& range : ranges_) {
            lines_left_ += lines_of(range);
        }
        start_range();
    }

    // The call will take about `steps` steps: each issues an equal share of what is left.
    void plan(std::uint32_t steps) { steps_left_ = steps; }

    void step() {
        if (lines_left_ == 0) {
            return;
        }
        const std::uint32_t steps = steps_left_ > 1 ? steps_left_ : 1;
        issue((lines_left_ + steps - 1) / steps);
        if (steps_left_ > 0) {
            --steps_left_;
        }
    }

    // What the steps did not reach (a call that ended early, a plan too short).
    void finish() { issue(lines_left_); }

    std::uint32_t lines_left() const { return lines_left_; }

  private:
    static std::uintptr_t first_line(const PrefetchRange& range) {
        return reinterpret_cast<std::uintptr_t>(range.start) & ~(line_size - 1);
    }
    static std::uint32_t lines_of(const PrefetchRange& range) {
        if (range.length == 0) {
            return 0;
        }
        const std::uintptr_t end = reinterpret_cast<std::uintptr_t>(range.start) + range.length;
        return static_cast<std::uint32_t>((end - first_line(range) + line_size - 1) / line_size);
    }

    // Skips empty ranges; `line_` and `range_lines_left_` describe the current one.
    void start_range() {
        while (range_ < ranges_.size() && lines_of(ranges_[range_]) == 0) {
            ++range_;
        }
        if (range_ < ranges_.size()) {
            line_ = first_line(ranges_[range_]);
            range_lines_left_ = lines_of(ranges_[range_]);
        }
    }

    void issue(std::uint32_t lines) {
        for (; lines > 0 && lines_left_ > 0; --lines, --lines_left_) {
            // Locality 1: into L2 (and the last level), not L1, which the open's own lanes fill.
            __builtin_prefetch(reinterpret_cast<const void*>(line_), 0, 1);
            line_ += line_size;
            if (--range_lines_left_ == 0) {
                ++range_;
                start_range();
            }
        }
    }

    std::span<const PrefetchRange> ranges_;
    std::size_t range_ = 0;
    std::uintptr_t line_ = 0;
    std::uint32_t range_lines_left_ = 0;
    std::uint32_t lines_left_ = 0;
    std::uint32_t steps_left_ = 0;
};

}  // namespace meshgate::crypto
