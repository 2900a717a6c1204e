// Fetching the memory of the next call while this one computes.
//
// A worker opens one burst while the next burst already waits in its receive lookahead. Those
// packets arrive in the last-level cache at best (DMA, or another core's writes), and an
// open's first pass, Poly1305 over the ciphertext, waits on the lines it misses: frames just
// received opened at 1.03-1.19 Mpps where the same frames opened at 1.38-1.43 once a copy had
// left them in L2 (bench/RESULTS.md, sessions 19-21). Asking for the whole next burst at once (736
// lines at 1420 B) sped the open up but stalled on the miss buffers as long as it saved. So
// the lines are asked for a few at a time, between ChaCha20 blocks, which are pure
// computation. And only each range's first lines: Poly1305 reads a packet front to back, and
// once its first lines are in the hardware prefetcher streams the rest (bench/RESULTS.md,
// session 30).
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
    // Lines fetched from the start of each range, at most. Fetching all 22 lines of a 1420-byte
    // packet cost 1.8% of a cached open and gained 6.5% on frames in memory; the first six cost
    // 1.2% and gained 8% (crypto_bench open_paced(_cold)/avx512/1420, AMD, session 30).
    static constexpr std::uint32_t lead_lines = 6;

    PacedPrefetch() = default;  // nothing to fetch
    explicit PacedPrefetch(std::span<const PrefetchRange> ranges) : ranges_(ranges) {
        for (const PrefetchRange& range : ranges_) {
            lines_left_ += lines_of(range);
        }
        start_range();
    }

    // The call will take about `steps` steps: they share the lines evenly, the first
    // `lines % steps` of them one line more (what sharing out what is left at every step
    // comes to, without a division a step).
    void plan(std::uint32_t steps) {
        steps_left_ = steps;
        per_step_ = steps > 0 ? lines_left_ / steps : 0;
        steps_with_one_more_ = steps > 0 ? lines_left_ % steps : 0;
    }

    // Unplanned, or past the plan: everything left at once.
    void step() {
        if (lines_left_ == 0) {
            return;
        }
        if (steps_left_ == 0) {
            issue(lines_left_);
            return;
        }
        --steps_left_;
        std::uint32_t lines = per_step_;
        if (steps_with_one_more_ > 0) {
            --steps_with_one_more_;
            ++lines;
        }
        issue(lines);
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
        const auto lines =
            static_cast<std::uint32_t>((end - first_line(range) + line_size - 1) / line_size);
        return lines < lead_lines ? lines : lead_lines;
    }

    // Skips empty ranges; `line_` and `range_lines_left_` describe the current one.
    void start_range() {
        range_lines_left_ = 0;
        while (range_ < ranges_.size() && lines_of(ranges_[range_]) == 0) {
            ++range_;
        }
        if (range_ < ranges_.size()) {
            line_ = first_line(ranges_[range_]);
            range_lines_left_ = lines_of(ranges_[range_]);
        }
    }

    // The walk runs in locals and stores its place back once, four instructions a line. Kept
    // in the members line by line (the open's stores may alias them, so the compiler cannot
    // hold them in registers), it was three dependent read-modify-writes a line: a paced
    // open of 1420 B read 0.965 of a plain one's rate, 0.973 walked this way (crypto_bench
    // open_paced/avx512, session 29). What is left is about one cycle a line, in the open's
    // shadow or not: the ChaCha20 blocks keep the core busy, and work between them adds on.
    void issue(std::uint32_t lines) {
        lines = lines < lines_left_ ? lines : lines_left_;
        lines_left_ -= lines;
        std::uintptr_t line = line_;
        std::uint32_t in_range = range_lines_left_;
        while (lines > 0) {
            const std::uint32_t run = lines < in_range ? lines : in_range;
            for (std::uint32_t k = 0; k < run; ++k, line += line_size) {
                // Into L1 (locality 3). Asked for into L2 only (locality 1), so as not to
                // crowd the open's own lanes out of L1, they left the pipeline slower: with
                // L1, paired chunks of exit_out/1420 read about 0.01 more of their yardstick,
                // and exit_in/1420 about 0.005 more (bench/RESULTS.md, session 34).
                __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 3);
            }
            lines -= run;
            in_range -= run;
            if (in_range == 0) {
                ++range_;
                start_range();
                line = line_;
                in_range = range_lines_left_;
            }
        }
        line_ = line;
        range_lines_left_ = in_range;
    }

    std::span<const PrefetchRange> ranges_;
    std::size_t range_ = 0;
    std::uintptr_t line_ = 0;
    std::uint32_t range_lines_left_ = 0;
    std::uint32_t lines_left_ = 0;
    std::uint32_t steps_left_ = 0;
    std::uint32_t per_step_ = 0;
    std::uint32_t steps_with_one_more_ = 0;
};

}  // namespace meshgate::crypto
