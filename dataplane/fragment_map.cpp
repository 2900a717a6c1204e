#include "dataplane/fragment_map.hpp"

#include <algorithm>
#include <bit>

namespace meshgate::dataplane {

FragmentMap::FragmentMap(std::uint32_t capacity, std::uint64_t lifetime_ticks)
    : entries_(std::bit_ceil(std::max(capacity, 1u))), lifetime_(lifetime_ticks) {}

void FragmentMap::remember(const FragmentKey& key, std::uint32_t value, std::uint64_t now) {
    Entry& entry = entries_[slot_of(key)];
    if (entry.expires > now && !(entry.key == key)) {
        ++displaced_;
    }
    entry.key = key;
    entry.value = value;
    entry.expires = now + lifetime_;
}

std::optional<std::uint32_t> FragmentMap::find(const FragmentKey& key, std::uint64_t now) const {
    const Entry& entry = entries_[slot_of(key)];
    if (entry.expires <= now || !(entry.key == key)) {
        return std::nullopt;
    }
    return entry.value;
}

}  // namespace meshgate::dataplane
