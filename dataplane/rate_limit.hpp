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
#include <rte_prefetch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "config/config.hpp"
#include "dataplane/allowed_ips.hpp"

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

// Every peer's limits by PeerId, and one byte a peer saying which of its directions have one.
// Most peers have none: the bytes (64 peers a cache line) answer for them, and their limiter
// lines are never read. Every packet between a peer and the uplink used to read its peer's
// line, one more per-peer line a packet each way, which with many peers is rarely cached
// (bench/RESULTS.md, session 27).
//
// Writers: as RateLimiter's. The control thread configures a peer while no worker uses it;
// afterwards only the peer's owner worker meters it.
class PeerRateLimitTable {
  public:
    explicit PeerRateLimitTable(std::size_t peers);

    // ---- control thread ----
    // The peer's configured limits (absent: unlimited).
    void configure(PeerId peer, RateProfiles& profiles, const config::Peer& config);
    // One direction (null: unlimited).
    void configure_ingress(PeerId peer, rte_meter_srtcm_profile* profile);
    void configure_egress(PeerId peer, rte_meter_srtcm_profile* profile);
    // What configure() set (tests, diagnostics).
    const PeerRateLimits& of(PeerId peer) const { return limits_[peer]; }

    // ---- the peer's owner worker, per packet ----
    // Ingress: what the peer sends toward the uplink; egress: what the uplink sends it.
    bool allow_ingress(PeerId peer, std::uint64_t now_tsc, std::uint32_t bytes) {
        return (limited_[peer] & ingress_limited) == 0 ||
               limits_[peer].ingress.allow(now_tsc, bytes);
    }
    bool allow_egress(PeerId peer, std::uint64_t now_tsc, std::uint32_t bytes) {
        return (limited_[peer] & egress_limited) == 0 || limits_[peer].egress.allow(now_tsc, bytes);
    }
    // Starts loading the peer's limiter line, when the peer has a limit to read it for.
    void prefetch(PeerId peer) const {
        if (limited_[peer] != 0) {
            rte_prefetch0(&limits_[peer]);
        }
    }

  private:
    static constexpr std::uint8_t ingress_limited = 1;
    static constexpr std::uint8_t egress_limited = 2;

    void note_limits(PeerId peer);

    std::unique_ptr<PeerRateLimits[]> limits_;
    std::unique_ptr<std::uint8_t[]> limited_;  // ingress_limited | egress_limited
};

}  // namespace meshgate::dataplane
