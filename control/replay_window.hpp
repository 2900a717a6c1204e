// The anti-replay window for transport data (whitepaper §5.4.6, RFC 6479's sliding bitmap).
//
// 8192 counters wide, as the kernel and VPP: several cores decrypting one peer's packets
// reorder them, and a narrow window would reject legitimate late arrivals.
// check() comes before decryption and costs nothing on forged packets; update() only after
// the tag verified, so a forged counter can never advance the window.
//
// Counters that arrive in order (nearly all) are not written into the bitmap one by one: the
// window keeps the length of the run of recorded counters just below its top, and writes them
// into the bitmap only when the top jumps ahead past a gap. So a packet in order touches the two
// scalars, which share the keypair's receiving line, and no line of the 1 KB bitmap (but the
// word it enters, once every 64 counters). Setting a bit per packet made the bitmap's line a
// cache miss per packet with many peers: a peer's next packet comes hundreds of packets later.
// Owner worker only: no atomics.
#pragma once

#include <array>
#include <cstdint>

namespace meshgate::control {

class ReplayWindow {
  public:
    static constexpr unsigned bits = 8192;
    // Counters at or above this are never accepted (whitepaper §6: REJECT_AFTER_MESSAGES).
    static constexpr std::uint64_t reject_after_messages = ~std::uint64_t{0} - 8192;

    // True when `counter` may be new: not too old, not seen, not past the limit.
    bool check(std::uint64_t counter) const {
        if (counter >= reject_after_messages) {
            return false;
        }
        if (counter >= next_) {
            return true;  // newer than every recorded counter (or none recorded yet)
        }
        if (next_ - counter <= run_) {
            return false;  // in the run just below the top
        }
        if (next_ - 1 - counter >= depth) {
            return false;  // behind the window
        }
        return (words_[word_of(counter)] & bit_of(counter)) == 0;
    }

    // Records an authenticated counter (check() returned true for it).
    void update(std::uint64_t counter) {
        if (counter == next_) {
            // In order: the run grows. Beyond the window's depth it need not: what falls out of
            // it is behind the window, which check() refuses anyway.
            advance_to(counter);
            if (run_ < depth) {
                ++run_;
            }
            return;
        }
        if (counter > next_) {
            // The top moves past a gap: the run is no longer just below it. (A late counter
            // below the run leaves it as it is.)
            write_run();
            advance_to(counter);
        }
        words_[word_of(counter)] |= bit_of(counter);
    }

    // check() and update() in one, for a counter whose tag verified: records it and returns
    // true, or returns false (recording nothing) where check() would. A worker checks a whole
    // burst before opening it, so a counter can pass that check twice when a copy arrives in
    // the same burst: the second copy is refused here, where it is recorded.
    bool accept(std::uint64_t counter) {
        if (!check(counter)) {
            return false;
        }
        update(counter);
        return true;
    }

    // The greatest recorded counter; 0 when none is.
    std::uint64_t greatest() const { return next_ == 0 ? 0 : next_ - 1; }

    // For prefetching: the bitmap word check() and update() will touch for `counter`, or
    // nullptr when they touch only the scalars (the next counter in order; every 64th of those
    // clears the word it enters, without being asked for).
    const void* word_touched(std::uint64_t counter) const {
        return counter == next_ ? nullptr : &words_[word_of(counter)];
    }
    // For tests of the data plane's keypair layout: the scalars' first and last bytes, and
    // the bitmap word of `counter`.
    const void* scalars_first_byte() const { return &run_; }
    const void* scalars_last_byte() const {
        return reinterpret_cast<const std::uint8_t*>(&next_) + sizeof next_ - 1;
    }
    const void* word_address(std::uint64_t counter) const { return &words_[word_of(counter)]; }

  private:
    static constexpr unsigned word_bits = 64;
    static constexpr unsigned words = bits / word_bits;
    // One word of the ring is the partly filled newest one, so the usable depth is bits - 64
    // (as RFC 6479): a counter this far or further below the greatest is refused.
    static constexpr std::uint64_t depth = bits - word_bits;

    static unsigned word_of(std::uint64_t counter) {
        return static_cast<unsigned>((counter / word_bits) % words);
    }
    static std::uint64_t bit_of(std::uint64_t counter) {
        return std::uint64_t{1} << (counter % word_bits);
    }

    // Moves the top of the window to `counter`, clearing the words it slides over.
    void advance_to(std::uint64_t counter) {
        const std::uint64_t new_word = counter / word_bits;
        if (next_ == 0 || new_word - (next_ - 1) / word_bits >= words) {
            words_.fill(0);
        } else {
            for (std::uint64_t w = (next_ - 1) / word_bits + 1; w <= new_word; ++w) {
                words_[w % words] = 0;
            }
        }
        next_ = counter + 1;  // no overflow: counter < reject_after_messages
    }

    // Writes the run into the bitmap and empties it. The run holds only counters within the
    // window's depth (run_ is capped there): a counter further below shares its ring word with
    // the newest word, and its bit would mark one of that word's later counters seen.
    void write_run() {
        std::uint64_t counter = next_ - run_;  // run_ <= depth, and never more than recorded
        while (counter < next_) {
            // The rest of this word, or up to the top.
            const std::uint64_t word_end = (counter / word_bits + 1) * word_bits;
            const std::uint64_t end = word_end < next_ ? word_end : next_;
            const unsigned from = static_cast<unsigned>(counter % word_bits);
            const unsigned count = static_cast<unsigned>(end - counter);
            const std::uint64_t mask =
                count == word_bits ? ~std::uint64_t{0} : ((std::uint64_t{1} << count) - 1) << from;
            words_[word_of(counter)] |= mask;
            counter = end;
        }
        run_ = 0;
    }

    // The receiving line ends with these two scalars (16 bytes), so that check() and update()
    // of a counter in order touch that line only. run_: the counters [next_ - run_, next_) are
    // recorded but not yet in the bitmap (at most `depth` of them).
    std::uint16_t run_ = 0;
    // One past the greatest recorded counter, 0 while none is.
    std::uint64_t next_ = 0;
    std::array<std::uint64_t, words> words_{};
};

}  // namespace meshgate::control
