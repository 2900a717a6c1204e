// Rate limits: on a synthetic TSC clock (scaled by the real rte_get_tsc_hz(), which the
// profiles are built with), a peer offering twice its rate gets rate x time + burst within
// 2%; the burst passes at once at the start and nothing more until tokens accrue; a peer
// without a limit gets everything; equal limits share one profile; the per-peer table meters
// each direction of each peer on its own, and only the directions that have a limit.
#include "dataplane/rate_limit.hpp"

#include <gtest/gtest.h>
#include <rte_cycles.h>

#include <cmath>
#include <stdexcept>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint64_t rate = 2'500'000;  // 20 Mbit/s
constexpr std::uint64_t burst = 250'000;
constexpr std::uint32_t packet = 1400;

// TSC cycles for `bytes` at `bytes_per_second`.
std::uint64_t cycles_for(std::uint64_t bytes, std::uint64_t bytes_per_second) {
    return static_cast<std::uint64_t>(static_cast<double>(rte_get_tsc_hz()) *
                                      static_cast<double>(bytes) /
                                      static_cast<double>(bytes_per_second));
}

TEST(RateLimiter, AdmitsRateTimesTimePlusBurstWhenOfferedTwice) {
    RateProfiles profiles;
    RateLimiter limiter;
    limiter.configure(profiles.get({rate, burst}));
    ASSERT_TRUE(limiter.enabled());
    // The meter started at the real TSC; the fake clock starts there and runs on its own.
    const std::uint64_t start = rte_get_tsc_cycles();
    const std::uint64_t gap = cycles_for(packet, 2 * rate);
    const std::uint64_t seconds = 10;
    const std::uint64_t end = start + seconds * rte_get_tsc_hz();
    std::uint64_t admitted = 0, offered = 0;
    for (std::uint64_t now = start; now < end; now += gap) {
        offered += packet;
        admitted += limiter.allow(now, packet) ? packet : 0;
    }
    const double expected = static_cast<double>(rate * seconds + burst);
    EXPECT_NEAR(static_cast<double>(admitted), expected, 0.02 * expected)
        << "offered " << offered << " bytes";
    EXPECT_GT(offered, 19 * rate) << "the offer really was about twice the rate";
}

TEST(RateLimiter, HonoursTheBurstAtTheStartThenRefillsAtTheRate) {
    RateProfiles profiles;
    RateLimiter limiter;
    limiter.configure(profiles.get({rate, burst}));
    const std::uint64_t now = rte_get_tsc_cycles();
    unsigned passed = 0;
    for (int i = 0; i < 1000; ++i) {
        passed += limiter.allow(now, packet);
    }
    EXPECT_EQ(passed, burst / packet) << "a full bucket at the start, and not one packet more";
    EXPECT_FALSE(limiter.allow(now, packet));
    // One packet's worth of tokens later (plus a little for the meter's period), one more.
    const std::uint64_t later = now + cycles_for(packet + 100, rate);
    EXPECT_TRUE(limiter.allow(later, packet));
    EXPECT_FALSE(limiter.allow(later, packet));
    // After a long idle time the bucket is full again, but never more than the burst.
    const std::uint64_t idle = later + 60 * rte_get_tsc_hz();
    passed = 0;
    for (int i = 0; i < 1000; ++i) {
        passed += limiter.allow(idle, packet);
    }
    EXPECT_EQ(passed, burst / packet);
}

TEST(RateLimiter, DisabledAdmitsEverything) {
    RateLimiter never_configured;
    EXPECT_FALSE(never_configured.enabled());
    RateLimiter disabled;
    RateProfiles profiles;
    disabled.configure(profiles.get({rate, burst}));
    disabled.configure(nullptr);  // a limit removed
    EXPECT_FALSE(disabled.enabled());
    const std::uint64_t now = rte_get_tsc_cycles();
    for (int i = 0; i < 100'000; ++i) {
        ASSERT_TRUE(never_configured.allow(now, 9000));
        ASSERT_TRUE(disabled.allow(now, 9000));
    }
}

TEST(RateProfiles, OnePerDistinctLimit) {
    RateProfiles profiles;
    rte_meter_srtcm_profile* a = profiles.get({rate, burst});
    EXPECT_EQ(profiles.get({rate, burst}), a);
    EXPECT_NE(profiles.get({rate, burst * 2}), a);
    EXPECT_NE(profiles.get({rate * 2, burst}), a);
    EXPECT_EQ(profiles.size(), 3u);
    EXPECT_THROW(profiles.get({0, burst}), std::invalid_argument);
}

TEST(PeerRateLimits, FollowThePeersConfiguration) {
    RateProfiles profiles;
    config::Peer peer;
    peer.ingress = config::RateLimit{rate, burst};
    PeerRateLimits limits;
    limits.configure(profiles, peer);
    EXPECT_TRUE(limits.ingress.enabled());
    EXPECT_FALSE(limits.egress.enabled());
    peer.egress = config::RateLimit{rate, burst};
    limits.configure(profiles, peer);
    EXPECT_TRUE(limits.egress.enabled());
    EXPECT_EQ(profiles.size(), 1u) << "ingress and egress share the profile";
}

// The burst's worth of packets, sent at one instant: what a limited direction admits at once.
unsigned admitted_at_once(PeerRateLimitTable& table, PeerId peer, bool ingress) {
    const std::uint64_t now = rte_get_tsc_cycles();
    unsigned passed = 0;
    for (int i = 0; i < 1000; ++i) {
        passed += ingress ? table.allow_ingress(peer, now, packet)
                          : table.allow_egress(peer, now, packet);
    }
    return passed;
}

TEST(PeerRateLimitTable, MetersOnlyTheDirectionsThatHaveALimit) {
    RateProfiles profiles;
    PeerRateLimitTable table(3);
    table.configure_ingress(1, profiles.get({rate, burst}));
    table.configure_egress(2, profiles.get({rate, burst}));
    EXPECT_EQ(admitted_at_once(table, 0, true), 1000u) << "peer 0 has no limit";
    EXPECT_EQ(admitted_at_once(table, 0, false), 1000u);
    EXPECT_EQ(admitted_at_once(table, 1, true), burst / packet);
    EXPECT_EQ(admitted_at_once(table, 1, false), 1000u) << "only peer 1's ingress is limited";
    EXPECT_EQ(admitted_at_once(table, 2, true), 1000u);
    EXPECT_EQ(admitted_at_once(table, 2, false), burst / packet);
}

TEST(PeerRateLimitTable, ALimitRemovedAdmitsEverythingAgain) {
    RateProfiles profiles;
    PeerRateLimitTable table(1);
    table.configure_ingress(0, profiles.get({rate, burst}));
    table.configure_egress(0, profiles.get({rate, burst}));
    table.configure_ingress(0, nullptr);
    EXPECT_FALSE(table.of(0).ingress.enabled());
    EXPECT_EQ(admitted_at_once(table, 0, true), 1000u);
    EXPECT_EQ(admitted_at_once(table, 0, false), burst / packet) << "egress keeps its limit";
}

TEST(PeerRateLimitTable, FollowsEachPeersConfiguration) {
    RateProfiles profiles;
    PeerRateLimitTable table(2);
    config::Peer limited;
    limited.egress = config::RateLimit{rate, burst};
    table.configure(0, profiles, limited);
    table.configure(1, profiles, config::Peer{});
    EXPECT_TRUE(table.of(0).egress.enabled());
    EXPECT_FALSE(table.of(0).ingress.enabled());
    EXPECT_EQ(admitted_at_once(table, 0, false), burst / packet);
    EXPECT_EQ(admitted_at_once(table, 1, false), 1000u);
    table.configure(0, profiles, config::Peer{});  // the limit taken away again
    EXPECT_EQ(admitted_at_once(table, 0, false), 1000u);
}

}  // namespace
}  // namespace meshgate::dataplane
