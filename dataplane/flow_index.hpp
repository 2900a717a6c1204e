// The NAT's flow index (nat.hpp): from a flow key's hash to the number of the entry that holds
// the flow. The table of entries keeps the keys; the index keeps, per slot, a 16-bit tag of the
// hash and the entry number, and asks the caller whether a candidate entry is the flow.
//
// Why not rte_hash: a lookup there read a bucket line and then the key's line in a separate
// key store, before the caller read its own entry; the entry holds the flow's tuple anyway, so
// comparing there saves that line and its miss (and rte_hash's bulk lookup cost 200
// instructions a packet in callgrind of exit_out/64/1000, a quarter of the exit path).
//
// Layout: open addressing over buckets of one cache line, eight slots each, probed linearly
// from the hash's home bucket. A bucket's `overflow` counts the flows that passed it because
// it was full, so a lookup stops at the first bucket without a match whose count is zero;
// erasing walks the same path and takes the counts back. At least twice as many slots as
// flows keeps nearly every lookup to its home bucket.
//
// The hash is keyed with a random secret (FlowHasher), so a peer choosing its own ports and
// destinations cannot pile its flows into one bucket run and slow every lookup.
//
// Writer and reader: the NAT table's worker only. No allocation after construction.
#pragma once

#include <emmintrin.h>
#include <rte_prefetch.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "crypto/secure.hpp"

namespace meshgate::dataplane {

// NH (the inner hash of UMAC and VHASH) over the key's ten 32-bit words with a random key,
// then a 64-bit finaliser so every bit of the result depends on every product. NH is
// 2^-32-almost-universal: without the key, colliding keys cannot be chosen.
class FlowHasher {
  public:
    static constexpr std::size_t key_bytes = 40;
    FlowHasher();  // a random key
    explicit FlowHasher(const std::array<std::uint32_t, 10>& key) { load_key(key); }
    ~FlowHasher() { crypto::wipe(this, sizeof *this); }
    FlowHasher(const FlowHasher&) = delete;
    FlowHasher& operator=(const FlowHasher&) = delete;

    // Five products of word pairs, two at a time: _mm_mul_epu32 multiplies the low words of
    // each 64-bit lane, so shifting a lane right by 32 lines each pair's second word up with
    // its first. (The scalar loop took 47 instructions in callgrind of exit_out/64/1000.)
    std::uint64_t operator()(const void* key_of_40_bytes) const {
        const auto* words = static_cast<const __m128i*>(key_of_40_bytes);
        const __m128i low = _mm_add_epi32(_mm_loadu_si128(words), key_low_);            // 0..3
        const __m128i middle = _mm_add_epi32(_mm_loadu_si128(words + 1), key_middle_);  // 4..7
        const __m128i high = _mm_add_epi32(_mm_loadl_epi64(words + 2), key_high_);      // 8, 9
        const __m128i products =
            _mm_add_epi64(_mm_add_epi64(_mm_mul_epu32(low, _mm_srli_epi64(low, 32)),
                                        _mm_mul_epu32(middle, _mm_srli_epi64(middle, 32))),
                          _mm_mul_epu32(high, _mm_srli_epi64(high, 32)));
        std::uint64_t sum =
            static_cast<std::uint64_t>(_mm_cvtsi128_si64(products)) +
            static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(products, products)));
        // MurmurHash3's fmix64.
        sum ^= sum >> 33;
        sum *= 0xff51afd7ed558ccdULL;
        sum ^= sum >> 33;
        sum *= 0xc4ceb9fe1a85ec53ULL;
        sum ^= sum >> 33;
        return sum;
    }

  private:
    void load_key(const std::array<std::uint32_t, 10>& key) {
        key_low_ = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key.data()));
        key_middle_ = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key.data() + 4));
        key_high_ = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(key.data() + 8));
    }

    __m128i key_low_, key_middle_, key_high_;  // the high one's upper two words stay zero
};

class FlowIndex {
  public:
    static constexpr std::uint32_t slots_per_bucket = 8;

    // Room for `capacity` entries with the buckets at most half full. Cold path: throws
    // std::runtime_error when DPDK cannot provide the memory. `name` labels the allocation.
    FlowIndex(const std::string& name, std::uint32_t capacity, int socket);
    ~FlowIndex();
    FlowIndex(const FlowIndex&) = delete;
    FlowIndex& operator=(const FlowIndex&) = delete;

    // Starts loading the bucket a lookup of `hash` reads first.
    void prefetch(std::uint64_t hash) const { rte_prefetch0(&buckets_[home_of(hash)]); }

    // The first entry of the home bucket whose tag matches, or -1: the likely answer, for the
    // caller to prefetch before it compares.
    std::int32_t first_candidate(std::uint64_t hash) const {
        const Bucket& bucket = buckets_[home_of(hash)];
        const unsigned hits = bucket.matching(tag_of(hash));
        return hits == 0 ? -1 : static_cast<std::int32_t>(bucket.values[std::countr_zero(hits)]);
    }

    // The entry for which `is_flow(entry)` holds among those stored under `hash`, or -1.
    template <typename IsFlow>
    std::int32_t find(std::uint64_t hash, IsFlow&& is_flow) const {
        const std::uint16_t tag = tag_of(hash);
        std::uint32_t at = home_of(hash);
        for (std::uint32_t probed = 0; probed <= mask_; ++probed) {
            const Bucket& bucket = buckets_[at];
            for (unsigned hits = bucket.matching(tag); hits != 0; hits &= hits - 1) {
                const std::uint32_t entry = bucket.values[std::countr_zero(hits)];
                if (is_flow(entry)) {
                    return static_cast<std::int32_t>(entry);
                }
            }
            if (bucket.overflow == 0) {
                return -1;
            }
            at = (at + 1) & mask_;
        }
        return -1;
    }

    // Stores `entry` under `hash`; the caller knows the flow is not stored yet. False only
    // when every slot is taken, which a caller keeping to `capacity` entries never sees.
    bool insert(std::uint64_t hash, std::uint32_t entry);
    // Removes `entry`, stored under `hash` (a no-op when it is not).
    void erase(std::uint64_t hash, std::uint32_t entry);

    std::uint32_t size() const { return size_; }

  private:
    struct alignas(64) Bucket {
        std::uint16_t tags[slots_per_bucket];  // 0: the slot is empty
        std::uint32_t values[slots_per_bucket];
        std::uint32_t overflow;  // flows stored beyond this bucket that passed it, full

        // Bit i set: slot i holds `tag`.
        unsigned matching(std::uint16_t tag) const {
            const __m128i tags_now = _mm_load_si128(reinterpret_cast<const __m128i*>(tags));
            const __m128i equal =
                _mm_cmpeq_epi16(tags_now, _mm_set1_epi16(static_cast<short>(tag)));
            return static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(equal, equal))) & 0xFF;
        }
    };
    static_assert(sizeof(Bucket) == 64);

    // The tag and the bucket come from different bits of the hash, and a tag is never 0.
    static std::uint16_t tag_of(std::uint64_t hash) { return static_cast<std::uint16_t>(hash) | 1; }
    std::uint32_t home_of(std::uint64_t hash) const {
        return static_cast<std::uint32_t>(hash >> 32) & mask_;
    }

    Bucket* buckets_ = nullptr;
    std::uint32_t mask_ = 0;  // bucket count - 1 (a power of two)
    std::uint32_t size_ = 0;
};

}  // namespace meshgate::dataplane
