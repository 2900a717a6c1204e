#include "dataplane/rate_limit.hpp"

#include <stdexcept>
#include <string>

namespace meshgate::dataplane {

rte_meter_srtcm_profile* RateProfiles::get(const config::RateLimit& limit) {
    const auto key = std::make_pair(limit.bytes_per_second, limit.burst_bytes);
    if (auto found = profiles_.find(key); found != profiles_.end()) {
        return found->second.get();
    }
    // No excess bucket: whatever exceeds the committed burst is red, never yellow.
    rte_meter_srtcm_params params{};
    params.cir = limit.bytes_per_second;
    params.cbs = limit.burst_bytes;
    params.ebs = 0;
    auto profile = std::make_unique<rte_meter_srtcm_profile>();
    if (int error = rte_meter_srtcm_profile_config(profile.get(), &params); error != 0) {
        throw std::invalid_argument(
            "rte_meter refused rate " + std::to_string(limit.bytes_per_second) + " B/s, burst " +
            std::to_string(limit.burst_bytes) + " B (" + std::to_string(error) + ")");
    }
    return profiles_.emplace(key, std::move(profile)).first->second.get();
}

void RateLimiter::configure(rte_meter_srtcm_profile* profile) {
    profile_ = profile;
    meter_ = {};
    if (profile != nullptr) {
        // Starts the bucket full at the current TSC (rte_get_tsc_cycles()).
        rte_meter_srtcm_config(&meter_, profile);
    }
}

void PeerRateLimits::configure(RateProfiles& profiles, const config::Peer& peer) {
    ingress.configure(peer.ingress ? profiles.get(*peer.ingress) : nullptr);
    egress.configure(peer.egress ? profiles.get(*peer.egress) : nullptr);
}

PeerRateLimitTable::PeerRateLimitTable(std::size_t peers)
    : limits_(std::make_unique<PeerRateLimits[]>(peers)),
      limited_(std::make_unique<std::uint8_t[]>(peers)) {}

// The bytes mirror the limiters, derived from them in one place after any change.
void PeerRateLimitTable::note_limits(PeerId peer) {
    const PeerRateLimits& limits = limits_[peer];
    limited_[peer] = static_cast<std::uint8_t>((limits.ingress.enabled() ? ingress_limited : 0) |
                                               (limits.egress.enabled() ? egress_limited : 0));
}

void PeerRateLimitTable::configure(PeerId peer, RateProfiles& profiles,
                                   const config::Peer& config) {
    limits_[peer].configure(profiles, config);
    note_limits(peer);
}

void PeerRateLimitTable::configure_ingress(PeerId peer, rte_meter_srtcm_profile* profile) {
    limits_[peer].ingress.configure(profile);
    note_limits(peer);
}

void PeerRateLimitTable::configure_egress(PeerId peer, rte_meter_srtcm_profile* profile) {
    limits_[peer].egress.configure(profile);
    note_limits(peer);
}

}  // namespace meshgate::dataplane
