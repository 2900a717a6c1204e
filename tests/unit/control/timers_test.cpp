// The timers of whitepaper §6 with a fake clock: rekey at 120 s, keepalive at 10 s, giving
// up after 90 s of retries, wiping every key at 540 s, and persistent keepalive.
#include <gtest/gtest.h>

#include "tests/support/engine_pair.hpp"

namespace meshgate::control {
namespace {

using test::EnginePair;
using test::ipv4_packet;

std::size_t initiations_in(const Actions& actions) {
    std::size_t n = 0;
    for (const Action& action : actions) {
        n += action.kind == Action::Kind::send_to && action.bytes.size() == sizeof(Initiation);
    }
    return n;
}

TEST(Timers, InitiatorRekeysAfter120Seconds) {
    EnginePair pair;
    pair.handshake();
    pair.clock.advance(119s);
    Actions before = pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall);
    EXPECT_EQ(initiations_in(before), 0u);
    pair.pump_from_a(std::move(before));
    pair.clock.advance(2s);
    Actions after = pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall);
    EXPECT_EQ(initiations_in(after), 1u) << "data past REKEY_AFTER_TIME starts a handshake";
}

TEST(Timers, KeepaliveTenSecondsAfterUnansweredData) {
    EnginePair pair;
    pair.handshake();
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall));
    pair.clock.advance(9s);
    Actions early = pair.b.tick(pair.clock.now, pair.clock.wall);
    EXPECT_TRUE(early.empty());
    pair.clock.advance(1s);
    Actions due = pair.b.tick(pair.clock.now, pair.clock.wall);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].bytes.size(), sizeof(TransportHeader) + tag_bytes) << "an empty data message";
}

TEST(Timers, RetriesEveryFiveSecondsAndGivesUpAt90) {
    EnginePair pair;
    // B is unreachable: every datagram from A is lost.
    pair.intercept([](const std::vector<std::uint8_t>&, bool from_a) { return from_a; });
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall));
    std::size_t initiations = 1;
    for (int second = 1; second <= 120; ++second) {
        pair.clock.advance(1s);
        Actions out = pair.a.tick(pair.clock.now, pair.clock.wall);
        initiations += initiations_in(out);
        if (second == 89) {
            EXPECT_EQ(initiations, 18u) << "one initiation per REKEY_TIMEOUT";
        }
    }
    // Initiations went out at 0, 5, ..., 85 s; the retry due at 90 s finds REKEY_ATTEMPT_TIME
    // spent and gives up instead, and nothing follows.
    EXPECT_EQ(initiations, 18u);
    EXPECT_TRUE(pair.a.peer(pair.b_at_a)->staged.empty()) << "giving up drops the queued packets";
}

TEST(Timers, EveryKeyIsWipedAfter540Seconds) {
    EnginePair pair;
    pair.handshake();
    ASSERT_NE(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
    pair.clock.advance(539s);
    pair.tick_both();
    EXPECT_NE(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
    pair.clock.advance(1s);
    Actions wiped = pair.a.tick(pair.clock.now, pair.clock.wall);
    EXPECT_EQ(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
    EXPECT_GE(EnginePair::count(wiped, Action::Kind::retire_keypair), 1u);
    EXPECT_EQ(pair.a.index_count(), 0u);
}

TEST(Timers, NewHandshakeWhenDataGoesUnanswered) {
    EnginePair pair;
    pair.handshake();
    // A sends data; B never answers (its datagrams are lost).
    pair.intercept([](const std::vector<std::uint8_t>&, bool from_a) { return !from_a; });
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall));
    pair.clock.advance(14s);
    EXPECT_EQ(initiations_in(pair.a.tick(pair.clock.now, pair.clock.wall)), 0u);
    pair.clock.advance(1s);
    EXPECT_EQ(initiations_in(pair.a.tick(pair.clock.now, pair.clock.wall)), 1u)
        << "KEEPALIVE_TIMEOUT + REKEY_TIMEOUT without a reply";
}

TEST(Timers, PersistentKeepalive) {
    ProtocolConfig config = test::deterministic_config();
    EnginePair pair(config);
    pair.a.peer(pair.b_at_a)->persistent_keepalive_seconds = 25;
    pair.handshake();
    pair.clock.advance(24s);
    EXPECT_TRUE(pair.a.tick(pair.clock.now, pair.clock.wall).empty());
    pair.clock.advance(1s);
    Actions out = pair.a.tick(pair.clock.now, pair.clock.wall);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].bytes.size(), sizeof(TransportHeader) + tag_bytes);
}

TEST(Timers, StagedPacketsAreBoundedAndSentAfterTheHandshake) {
    EnginePair pair;
    pair.intercept([](const std::vector<std::uint8_t>&, bool from_a) { return from_a; });
    for (int i = 0; i < 200; ++i) {
        pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(40, static_cast<std::uint8_t>(i)),
                                     pair.clock.now, pair.clock.wall));
    }
    EXPECT_EQ(pair.a.peer(pair.b_at_a)->staged.size(), 128u);
    EXPECT_EQ(pair.a.drops(EngineDrop::staged_overflow), 72u);
    pair.intercept({});
    pair.clock.advance(5s);
    pair.tick_both();
    ASSERT_EQ(pair.delivered_to_b.size(), 128u);
    EXPECT_EQ(pair.delivered_to_b.front()[5], 72) << "the oldest were the ones dropped";
}

}  // namespace
}  // namespace meshgate::control
