#include "dataplane/early_fragments.hpp"

namespace meshgate::dataplane {

EarlyFragments::~EarlyFragments() {
    for (unsigned i = 0; i < count_; ++i) {
        rte_pktmbuf_free(held_[i].packet);
    }
}

rte_mbuf* EarlyFragments::hold(rte_mbuf* packet, const FragmentKey& key, std::uint64_t now) {
    rte_mbuf* evicted = nullptr;
    if (count_ == capacity) {
        evicted = held_[0].packet;
        for (unsigned i = 1; i < count_; ++i) {
            held_[i - 1] = held_[i];
        }
        --count_;
    }
    held_[count_++] = {key, packet, now};
    return evicted;
}

template <typename Take>
unsigned EarlyFragments::take_if(Take take, rte_mbuf** out, unsigned room) {
    unsigned taken = 0;
    unsigned kept = 0;
    for (unsigned i = 0; i < count_; ++i) {
        if (taken < room && take(held_[i])) {
            out[taken++] = held_[i].packet;
        } else {
            held_[kept++] = held_[i];
        }
    }
    count_ = kept;
    return taken;
}

unsigned EarlyFragments::release(const FragmentKey& key, rte_mbuf** out, unsigned room) {
    return take_if([&key](const Held& held) { return held.key == key; }, out, room);
}

unsigned EarlyFragments::expire(std::uint64_t now, rte_mbuf** out, unsigned room) {
    return take_if([this, now](const Held& held) { return now - held.arrived >= lifetime_; }, out,
                   room);
}

}  // namespace meshgate::dataplane
