// The anti-replay window for transport data (whitepaper §5.4.6, RFC 6479's sliding bitmap).
//
// 8192 counters wide, as the kernel and VPP: several cores decrypting one peer's packets
// reorder them, and a narrow window would reject legitimate late arrivals.
// check() comes before decryption and costs nothing on forged packets; update() only after
// the tag verified, so a forged counter can never advance the window.
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
        if (next_ - 1 - counter >= bits - word_bits) {
            return false;  // behind the window
        }
        return (words_[word_of(counter)] & bit_of(counter)) == 0;
    }

    // Records an authenticated counter (check() returned true for it).
    void update(std::uint64_t counter) {
        if (counter >= next_) {
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

    // The memory check() and update() touch for `counter`: the one scalar, and the bitmap word
    // (for prefetching, and for tests of the data plane's keypair layout).
    const void* state_address() const { return &next_; }
    const void* word_address(std::uint64_t counter) const { return &words_[word_of(counter)]; }

  private:
    static constexpr unsigned word_bits = 64;
    static constexpr unsigned words = bits / word_bits;

    static unsigned word_of(std::uint64_t counter) {
        return static_cast<unsigned>((counter / word_bits) % words);
    }
    static std::uint64_t bit_of(std::uint64_t counter) {
        return std::uint64_t{1} << (counter % word_bits);
    }

    // Moves the top of the window to `counter`, clearing the words it slides over. One word of
    // the ring is the partly filled newest one, so the usable depth is bits - 64 (as RFC 6479).
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

    // One past the greatest recorded counter, 0 while none is: one scalar, so that it can end
    // the cache line of whatever precedes the window (the keypair's receiving half), and
    // check() touches that line and one word of the bitmap.
    std::uint64_t next_ = 0;
    std::array<std::uint64_t, words> words_{};
};

}  // namespace meshgate::control
