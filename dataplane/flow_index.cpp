#include "dataplane/flow_index.hpp"

#include <algorithm>
#include <stdexcept>

#include "crypto/random.hpp"
#include "crypto/secure.hpp"
#include "dataplane/table_memory.hpp"

namespace meshgate::dataplane {

FlowHasher::FlowHasher() {
    std::array<std::uint32_t, 10> key;
    crypto::random_bytes(key.data(), sizeof key);
    load_key(key);
    crypto::wipe(key.data(), sizeof key);
}

FlowIndex::FlowIndex(const std::string& name, std::uint32_t capacity, int socket) {
    // At least two slots per entry, in a power of two of buckets.
    const std::uint64_t wanted =
        (std::uint64_t{capacity} * 2 + slots_per_bucket - 1) / slots_per_bucket;
    const std::uint64_t buckets = std::bit_ceil(std::max<std::uint64_t>(wanted, 1));
    if (buckets > (std::uint64_t{1} << 31)) {
        throw std::runtime_error("flow index " + name + ": capacity too large");
    }
    // Buckets are one cache line each: the table memory's alignment is theirs.
    static_assert(alignof(Bucket) == RTE_CACHE_LINE_SIZE);
    buckets_ =
        static_cast<Bucket*>(allocate_table_memory(name.c_str(), buckets * sizeof(Bucket), socket));
    if (buckets_ == nullptr) {
        throw std::runtime_error("flow index " + name + ": cannot allocate " +
                                 std::to_string(buckets) + " buckets");
    }
    mask_ = static_cast<std::uint32_t>(buckets - 1);
}

FlowIndex::~FlowIndex() {
    free_table_memory(buckets_, (std::size_t{mask_} + 1) * sizeof(Bucket));
}

bool FlowIndex::insert(std::uint64_t hash, std::uint32_t entry) {
    if (size_ == (mask_ + std::uint64_t{1}) * slots_per_bucket) {
        return false;
    }
    const std::uint16_t tag = tag_of(hash);
    std::uint32_t at = home_of(hash);
    for (;;) {
        Bucket& bucket = buckets_[at];
        const unsigned empty = bucket.matching(0);
        if (empty != 0) {
            const unsigned slot = static_cast<unsigned>(std::countr_zero(empty));
            bucket.tags[slot] = tag;
            bucket.values[slot] = entry;
            ++size_;
            return true;
        }
        ++bucket.overflow;  // a lookup for this flow must look past this bucket
        at = (at + 1) & mask_;
    }
}

void FlowIndex::erase(std::uint64_t hash, std::uint32_t entry) {
    const std::uint16_t tag = tag_of(hash);
    std::uint32_t at = home_of(hash);
    // First find it, so that nothing changes when it is not there.
    std::uint32_t passed = 0;
    for (;; ++passed) {
        if (passed > mask_) {
            return;
        }
        const Bucket& bucket = buckets_[(at + passed) & mask_];
        bool here = false;
        for (unsigned hits = bucket.matching(tag); hits != 0; hits &= hits - 1) {
            here = here || bucket.values[std::countr_zero(hits)] == entry;
        }
        if (here) {
            break;
        }
        if (bucket.overflow == 0) {
            return;
        }
    }
    // Give back the counts the insertion added on its way, then free the slot.
    for (std::uint32_t i = 0; i < passed; ++i) {
        --buckets_[(at + i) & mask_].overflow;
    }
    Bucket& bucket = buckets_[(at + passed) & mask_];
    for (unsigned hits = bucket.matching(tag); hits != 0; hits &= hits - 1) {
        const unsigned slot = static_cast<unsigned>(std::countr_zero(hits));
        if (bucket.values[slot] == entry) {
            bucket.tags[slot] = 0;
            --size_;
            return;
        }
    }
}

}  // namespace meshgate::dataplane
