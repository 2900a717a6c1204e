// Per-source token buckets for handshake messages while the gateway is under load
// (kernel: 20 per second with a burst of 5, per IPv4 address or IPv6 /64). Bounded: when the
// table is full, sources not yet in it are refused (an attacker cannot grow it).
//
// Control thread only.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

#include "control/endpoint.hpp"
#include "control/protocol_config.hpp"

namespace meshgate::control {

class RateLimiter {
  public:
    explicit RateLimiter(const ProtocolConfig& config);

    // Takes one token for `source` if it has one.
    bool allow(const Endpoint& source, Duration now);

    // Forgets sources whose buckets have been full for a second (called from tick()).
    void collect(Duration now);

    std::size_t size() const { return buckets_.size(); }

  private:
    struct Key {
        std::array<std::uint8_t, 8> prefix{};  // IPv4 address, or the IPv6 /64
        bool is_v6 = false;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& key) const;
    };
    struct Bucket {
        std::int64_t tokens;  // nanoseconds of credit
        Duration last;
    };

    std::int64_t cost_;     // one message, in nanoseconds of credit
    std::int64_t maximum_;  // the burst
    std::size_t capacity_;
    std::unordered_map<Key, Bucket, KeyHash> buckets_;
};

}  // namespace meshgate::control
