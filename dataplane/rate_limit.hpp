// Optional per-peer rate limits (issue 5), one per direction, with DPDK's rte_meter.
//
// A limit is a single-rate three-colour marker (srTCM, RFC 2697) used color-blind with the
// committed rate = bytes_per_second, committed burst = burst_bytes and no excess bucket
// (EBS = 0): a packet is green while the token bucket holds its length, and only green
// passes. Nothing is queued or shaped; excess is dropped and counted by the caller
// (ExitCounters::rate_limited_*), as a policer should on a poll-mode worker.
//
// A profile (rates converted to TSC periods) is shared by every meter with the same
// (rate, burst); a meter (bucket level and last update) is per peer and direction.
#pragma once

#include <rte_meter.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "config/config.hpp"

namespace meshgate::dataplane {

// The distinct srTCM profiles in use. Control thread only. Profiles are never freed while
// the table lives, so a meter's profile pointer stays valid however peers change; there is
// one per distinct configured (rate, burst), a handful in practice.
class RateProfiles {
  public:
    // The profile for `limit`, created on first use. Needs EAL (rte_get_tsc_hz()).
    // Cold path: throws std::invalid_argument when rte_meter refuses the values.
    rte_meter_srtcm_profile* get(const config::RateLimit& limit);
    std::size_t size() const { return profiles_.size(); }

  private:
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<rte_meter_srtcm_profile>>
        profiles_;
};

// One direction of one peer.
//
// Writers: configure() by the control thread while no worker uses the limiter (before the
// peer's slot is published with its release store, or with the peer unpublished); allow()
// by the peer's owner worker only, which alone then touches the meter state.
class RateLimiter {
  public:
    // `profile` null: no limit, allow() admits everything without touching a meter.
    // Otherwise the bucket starts full (a burst is admitted at once) at the current TSC.
    void configure(rte_meter_srtcm_profile* profile);
    bool enabled() const { return profile_ != nullptr; }

    // Owner worker, per packet: true when `bytes` may pass at TSC time `now_tsc` (monotonic,
    // and not before the configure() call).
    bool allow(std::uint64_t now_tsc, std::uint32_t bytes) {
        if (profile_ == nullptr) {
            return true;
        }
        return rte_meter_srtcm_color_blind_check(&meter_, profile_, now_tsc, bytes) ==
               RTE_COLOR_GREEN;
    }

  private:
    rte_meter_srtcm_profile* profile_ = nullptr;
    rte_meter_srtcm meter_{};
};

// A peer's two limits: ingress is what the peer sends (checked after decryption, before
// the uplink), egress what is sent to it (checked before encryption). Same writers as
// RateLimiter; both in one cache line of the owner worker.
struct alignas(64) PeerRateLimits {
    RateLimiter ingress;
    RateLimiter egress;

    // Control thread: the peer's configured limits (absent: unlimited).
    void configure(RateProfiles& profiles, const config::Peer& peer);
};
static_assert(sizeof(PeerRateLimits) == 64, "one cache line per peer");

}  // namespace meshgate::dataplane
