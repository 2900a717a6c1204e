#include "control/ratelimiter.hpp"

#include <algorithm>
#include <cstring>

namespace meshgate::control {

std::size_t RateLimiter::KeyHash::operator()(const Key& key) const {
    std::uint64_t value;
    std::memcpy(&value, key.prefix.data(), 8);
    // A multiplicative hash; the table is bounded, so collisions cost time, not memory.
    return static_cast<std::size_t>((value ^ (key.is_v6 ? 0x9E3779B97F4A7C15ULL : 0)) *
                                    0xD6E8FEB86659FD93ULL);
}

RateLimiter::RateLimiter(const ProtocolConfig& config)
    : cost_(1'000'000'000LL / std::max<std::uint32_t>(config.handshakes_per_second_per_source, 1)),
      maximum_(cost_ * std::max<std::uint32_t>(config.handshake_burst_per_source, 1)),
      capacity_(config.max_rate_limited_sources) {}

bool RateLimiter::allow(const Endpoint& source, Duration now) {
    Key key;
    key.is_v6 = source.is_v6;
    std::memcpy(key.prefix.data(), source.address.data(), source.is_v6 ? 8 : 4);
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= capacity_) {
            return false;
        }
        buckets_.emplace(key, Bucket{maximum_ - cost_, now});
        return true;
    }
    Bucket& bucket = it->second;
    bucket.tokens = std::min(maximum_, bucket.tokens + (now - bucket.last).count());
    bucket.last = now;
    if (bucket.tokens < cost_) {
        return false;
    }
    bucket.tokens -= cost_;
    return true;
}

void RateLimiter::collect(Duration now) {
    std::erase_if(buckets_, [this, now](const auto& item) {
        const Bucket& bucket = item.second;
        return bucket.tokens + (now - bucket.last).count() >= maximum_ && now - bucket.last > 1s;
    });
}

}  // namespace meshgate::control
