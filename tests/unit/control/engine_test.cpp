// The protocol engine, two instances in one process: both roles, PSKs, wrong keys, replays,
// floods, cookies under load, rotation across handshakes, and every malformed message.
#include "control/engine.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/engine_pair.hpp"

namespace meshgate::control {
namespace {

using test::EnginePair;
using test::ipv4_packet;

crypto::PresharedKey random_psk() {
    crypto::PresharedKey psk;
    crypto::random_bytes(psk.data(), psk.size());
    return psk;
}

TEST(Handshake, InitiatorDataStartsSessionAndArrives) {
    EnginePair pair;
    auto packet = ipv4_packet(100, 0x11);
    pair.pump_from_a(pair.a.send(pair.b_at_a, packet, pair.clock.now, pair.clock.wall));
    ASSERT_EQ(pair.delivered_to_b.size(), 1u);
    EXPECT_EQ(pair.delivered_to_b[0], packet) << "padding must be trimmed by the IP length";
    ASSERT_NE(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
    // B's keypair was confirmed by A's data, so B sends with it at once.
    ASSERT_NE(pair.b.peer(pair.a_at_b)->keypairs.current(), nullptr);
    EXPECT_EQ(pair.b.peer(pair.a_at_b)->keypairs.next(), nullptr);
    pair.pump_from_b(
        pair.b.send(pair.a_at_b, ipv4_packet(60, 0x22), pair.clock.now, pair.clock.wall));
    ASSERT_EQ(pair.delivered_to_a.size(), 1u);
    EXPECT_EQ(pair.delivered_to_a[0], ipv4_packet(60, 0x22));
}

TEST(Handshake, ResponderRoleWorksToo) {
    EnginePair pair;
    pair.pump_from_b(pair.b.send(pair.a_at_b, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall));
    EXPECT_EQ(pair.delivered_to_a.size(), 1u);
    EXPECT_TRUE(pair.b.peer(pair.a_at_b)->keypairs.current()->initiator);
    EXPECT_FALSE(pair.a.peer(pair.b_at_a)->keypairs.current()->initiator);
}

TEST(Handshake, ResponderKeypairWaitsForConfirmation) {
    EnginePair pair;
    // Swallow A's confirming keepalive: B must not send with its new keypair yet.
    pair.intercept([](const std::vector<std::uint8_t>& bytes, bool from_a) {
        return from_a && bytes[0] == 4;
    });
    pair.handshake();
    Peer& a_at_b = *pair.b.peer(pair.a_at_b);
    EXPECT_EQ(a_at_b.keypairs.current(), nullptr);
    ASSERT_NE(a_at_b.keypairs.next(), nullptr);
    // Data from B now stages and would start a handshake, instead of using `next`.
    pair.intercept({});
    pair.clock.advance(6s);
    Actions actions = pair.b.send(pair.a_at_b, ipv4_packet(40, 3), pair.clock.now, pair.clock.wall);
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_EQ(actions[0].bytes.size(), sizeof(Initiation));
}

TEST(Handshake, WithPresharedKey) {
    auto psk = random_psk();
    EnginePair pair(test::deterministic_config(), psk, psk);
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(64, 5), pair.clock.now, pair.clock.wall));
    EXPECT_EQ(pair.delivered_to_b.size(), 1u);
}

TEST(Handshake, MismatchedPresharedKeyFails) {
    EnginePair pair(test::deterministic_config(), random_psk(), random_psk());
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(64, 5), pair.clock.now, pair.clock.wall));
    EXPECT_EQ(pair.delivered_to_b.size(), 0u);
    EXPECT_EQ(pair.a.drops(EngineDrop::bad_response), 1u);
    EXPECT_EQ(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
}

TEST(Handshake, UnconfiguredPeerNeverCompletes) {
    EnginePair pair;
    Engine stranger(crypto::generate_private_key(), test::deterministic_config());
    PeerId b_at_stranger =
        *stranger.add_peer({.public_key = pair.b.public_key(), .endpoint = pair.b_endpoint});
    Actions out = stranger.initiate(b_at_stranger, pair.clock.now, pair.clock.wall);
    ASSERT_EQ(out.size(), 1u);
    Actions reply =
        pair.b.on_datagram(out[0].bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.b.drops(EngineDrop::unknown_peer), 1u);
    EXPECT_EQ(EnginePair::count(reply, Action::Kind::send_to), 0u);
}

TEST(Handshake, InitiationToTheWrongKeyFailsMac1) {
    EnginePair pair;
    Engine other(crypto::generate_private_key(), test::deterministic_config());
    Actions out = pair.a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall);
    other.on_datagram(out[0].bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(other.drops(EngineDrop::bad_mac1), 1u);
}

TEST(Replay, SameInitiationTwiceIsStale) {
    EnginePair pair;
    Actions out = pair.a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall);
    auto initiation = out[0].bytes;
    pair.b.on_datagram(initiation, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    pair.clock.advance(2s);  // past the flood limit: only the timestamp can refuse it now
    Actions again =
        pair.b.on_datagram(initiation, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.b.drops(EngineDrop::stale_timestamp), 1u);
    EXPECT_EQ(EnginePair::count(again, Action::Kind::send_to), 0u);
}

TEST(Replay, OlderTimestampIsStale) {
    EnginePair pair;
    auto wall = pair.clock.wall;
    Actions newer = pair.a.initiate(pair.b_at_a, pair.clock.now, wall);
    pair.b.on_datagram(newer[0].bytes, pair.a_endpoint, pair.clock.now, wall, false);
    pair.clock.advance(6s);
    // A's clock stepped back a minute: its next initiation carries an older TAI64N.
    Actions older = pair.a.initiate(pair.b_at_a, pair.clock.now, wall - std::chrono::minutes(1));
    pair.b.on_datagram(older[0].bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.b.drops(EngineDrop::stale_timestamp), 1u);
}

TEST(Flood, InitiationsFasterThanFiftyPerSecondAreDropped) {
    EnginePair pair;
    Actions first = pair.a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall);
    pair.b.on_datagram(first[0].bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    // A second, genuinely newer initiation 10 ms later (A forced past its own rekey limit).
    pair.clock.advance(10ms);
    Engine& a = pair.a;
    a.peer(pair.b_at_a)->timers.last_initiation_sent.reset();
    Actions second = a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall + 1s);
    pair.b.on_datagram(second[0].bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall + 1s,
                       false);
    EXPECT_EQ(pair.b.drops(EngineDrop::initiation_flood), 1u);
}

TEST(Cookie, UnderLoadRoundTripCompletesTheHandshake) {
    EnginePair pair;
    pair.b_under_load = true;
    pair.handshake();
    EXPECT_EQ(pair.b.drops(EngineDrop::cookie_required), 1u);
    EXPECT_TRUE(pair.a.peer(pair.b_at_a)->cookie.has_cookie(pair.clock.now, pair.a.config()));
    EXPECT_EQ(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
    // The retransmission carries mac2 made with the cookie, and B accepts it under load.
    pair.clock.advance(5s);
    pair.tick_both();
    EXPECT_NE(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
    EXPECT_EQ(pair.b.drops(EngineDrop::cookie_required), 1u);
}

TEST(Cookie, ForgedCookieReplyIsRejectedAndNeverRoams) {
    EnginePair pair;
    Actions out = pair.a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall);
    Initiation initiation;
    std::memcpy(&initiation, out[0].bytes.data(), sizeof(initiation));
    CookieReply forged{};
    forged.type = 3;
    forged.receiver_index = initiation.sender_index;
    auto bytes =
        std::vector<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&forged),
                                  reinterpret_cast<std::uint8_t*>(&forged) + sizeof(forged));
    Endpoint elsewhere = Endpoint::v4(203, 0, 113, 9, 9);
    pair.a.on_datagram(bytes, elsewhere, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.a.drops(EngineDrop::bad_cookie_reply), 1u);
    EXPECT_EQ(*pair.a.peer(pair.b_at_a)->endpoint, pair.b_endpoint);
}

TEST(Cookie, RateLimitUnderLoadAfterBurst) {
    EnginePair pair;
    // Prime A with a cookie so its messages carry a valid mac2.
    pair.b_under_load = true;
    pair.handshake();
    unsigned limited_before = static_cast<unsigned>(pair.b.drops(EngineDrop::rate_limited));
    for (int i = 0; i < 10; ++i) {
        pair.clock.advance(25ms);
        pair.a.peer(pair.b_at_a)->timers.last_initiation_sent.reset();
        pair.pump_from_a(pair.a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall));
    }
    EXPECT_GT(pair.b.drops(EngineDrop::rate_limited), limited_before);
}

TEST(BadMac1, IsDroppedWithoutStateChange) {
    EnginePair pair;
    Actions out = pair.a.initiate(pair.b_at_a, pair.clock.now, pair.clock.wall);
    auto bytes = out[0].bytes;
    bytes[mac1_offset<Initiation>()] ^= 1;
    pair.b.on_datagram(bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.b.drops(EngineDrop::bad_mac1), 1u);
    EXPECT_FALSE(pair.b.peer(pair.a_at_b)->latest_timestamp.has_value());
    // The genuine one still works afterwards.
    pair.pump_from_a(std::move(out));
    EXPECT_NE(pair.a.peer(pair.b_at_a)->keypairs.current(), nullptr);
}

// Every malformed message: the right reason, no crash, no state change.
TEST(Malformed, EveryKindIsCountedAndHarmless) {
    EnginePair pair;
    pair.handshake();
    const std::size_t indexes = pair.b.index_count();
    struct Case {
        const char* name;
        std::vector<std::uint8_t> bytes;
        EngineDrop reason;
    };
    auto of = [](std::uint8_t type, std::size_t length) {
        std::vector<std::uint8_t> bytes(length, 0);
        if (length > 0) {
            bytes[0] = type;
        }
        return bytes;
    };
    std::vector<Case> cases = {
        {"empty", {}, EngineDrop::bad_length},
        {"three bytes", {1, 0, 0}, EngineDrop::bad_length},
        {"type 0", of(0, 64), EngineDrop::unknown_type},
        {"type 5", of(5, 64), EngineDrop::unknown_type},
        {"reserved bytes set",
         [] {
             std::vector<std::uint8_t> b(148, 0);
             b[0] = 1;
             b[2] = 1;
             return b;
         }(),
         EngineDrop::unknown_type},
        {"short initiation", of(1, 147), EngineDrop::bad_length},
        {"long initiation", of(1, 149), EngineDrop::bad_length},
        {"short response", of(2, 91), EngineDrop::bad_length},
        {"long cookie reply", of(3, 65), EngineDrop::bad_length},
        {"short data", of(4, 31), EngineDrop::bad_length},
        {"zero initiation", of(1, 148), EngineDrop::bad_mac1},
        {"zero response", of(2, 92), EngineDrop::bad_mac1},
        {"cookie for no index", of(3, 64), EngineDrop::unknown_index},
        {"data for no index", of(4, 64), EngineDrop::unknown_index},
    };
    for (const Case& c : cases) {
        std::uint64_t before = pair.b.drops(c.reason);
        Actions out =
            pair.b.on_datagram(c.bytes, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
        EXPECT_EQ(pair.b.drops(c.reason), before + 1) << c.name;
        EXPECT_EQ(EnginePair::count(out, Action::Kind::send_to), 0u) << c.name;
    }
    EXPECT_EQ(pair.b.index_count(), indexes);
}

TEST(Transport, ForgedReplayedAndExpiredDataAreRefused) {
    EnginePair pair;
    std::vector<std::vector<std::uint8_t>> sent;
    pair.intercept([&sent](const std::vector<std::uint8_t>& bytes, bool from_a) {
        if (from_a && bytes[0] == 4) {
            sent.push_back(bytes);
        }
        return false;
    });
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(80, 9), pair.clock.now, pair.clock.wall));
    ASSERT_EQ(sent.size(), 1u);
    pair.intercept({});

    // Replayed.
    pair.b.on_datagram(sent[0], pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.b.drops(EngineDrop::replayed_counter), 1u);
    // Forged: a flipped ciphertext bit in a fresh counter.
    auto forged = sent[0];
    forged[8] = 77;  // counter 77, never used
    forged[20] ^= 1;
    pair.b.on_datagram(forged, pair.a_endpoint, pair.clock.now, pair.clock.wall, false);
    EXPECT_EQ(pair.b.drops(EngineDrop::decrypt_failed), 1u);
    // The failed packet did not move the window: counter 77 is still acceptable.
    EXPECT_TRUE(pair.b.peer(pair.a_at_b)->keypairs.current()->replay.check(77));
    // Expired: after REJECT_AFTER_TIME the keypair refuses everything.
    pair.clock.advance(181s);
    Actions late = pair.a.send(pair.b_at_a, ipv4_packet(80, 9), pair.clock.now, pair.clock.wall);
    EXPECT_EQ(late.size(), 1u);
    EXPECT_EQ(late[0].bytes.size(), sizeof(Initiation))
        << "expired keypair: re-handshake, not send";
}

TEST(Transport, RoamsOnAuthenticatedDataOnly) {
    EnginePair pair;
    pair.handshake();
    Endpoint moved = Endpoint::v4(203, 0, 113, 50, 40000);
    pair.a_endpoint = moved;
    pair.pump_from_a(pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall));
    EXPECT_EQ(*pair.b.peer(pair.a_at_b)->endpoint, moved);
}

TEST(Rotation, SeveralHandshakesRotateAndRetireKeypairs) {
    EnginePair pair;
    std::uint32_t previous_index = 0;
    for (int round = 0; round < 5; ++round) {
        pair.clock.advance(6s);
        pair.handshake();
        pair.pump_from_a(
            pair.a.send(pair.b_at_a, ipv4_packet(40, 1), pair.clock.now, pair.clock.wall));
        Peer& b_at_a = *pair.a.peer(pair.b_at_a);
        ASSERT_NE(b_at_a.keypairs.current(), nullptr);
        if (previous_index != 0) {
            ASSERT_NE(b_at_a.keypairs.previous(), nullptr);
            EXPECT_EQ(b_at_a.keypairs.previous()->local_index, previous_index);
        }
        previous_index = b_at_a.keypairs.current()->local_index;
    }
    EXPECT_EQ(pair.delivered_to_b.size(), 5u);
    // Bounded: each side holds at most previous + current (+ next) keypairs' indexes.
    EXPECT_LE(pair.a.index_count(), 3u);
    EXPECT_LE(pair.b.index_count(), 3u);
    EXPECT_GE(EnginePair::count(pair.a_log, Action::Kind::retire_keypair), 3u);
}

TEST(Peers, DuplicateOwnAndLowOrderKeysAreRefused) {
    EnginePair pair;
    EXPECT_FALSE(pair.a.add_peer({.public_key = pair.b.public_key()}).has_value());
    EXPECT_FALSE(pair.a.add_peer({.public_key = pair.a.public_key()}).has_value());
    EXPECT_FALSE(pair.a.add_peer({.public_key = crypto::PublicKey{}}).has_value());
}

TEST(Indexes, LowBitsNameTheOwner) {
    ProtocolConfig config = test::deterministic_config();
    config.index_layout.owner_bits = 2;
    Engine engine(crypto::generate_private_key(), config);
    Engine other(crypto::generate_private_key(), config);
    PeerId id = *engine.add_peer({.public_key = other.public_key(),
                                  .endpoint = Endpoint::v4(198, 51, 100, 9, 1),
                                  .owner = 3});
    for (int i = 0; i < 20; ++i) {
        engine.peer(id)->timers.last_initiation_sent.reset();
        Actions out = engine.initiate(id, Duration{i}, WallClock{});
        Initiation initiation;
        std::memcpy(&initiation, out[0].bytes.data(), sizeof(initiation));
        EXPECT_EQ(initiation.sender_index & 3, 3u);
    }
    EXPECT_EQ(engine.index_count(), 1u) << "each new initiation releases the previous index";
}

TEST(Indexes, NoFreeIndexRefusesTheHandshakeAndCountsIt) {
    ProtocolConfig config = test::deterministic_config();
    config.index_layout = {.owner_bits = 0, .slot_bits = 0};  // room for one live index
    Engine engine(crypto::generate_private_key(), config);
    Engine first(crypto::generate_private_key(), config);
    Engine second(crypto::generate_private_key(), config);
    PeerId holder = *engine.add_peer(
        {.public_key = first.public_key(), .endpoint = Endpoint::v4(198, 51, 100, 9, 1)});
    PeerId refused = *engine.add_peer(
        {.public_key = second.public_key(), .endpoint = Endpoint::v4(198, 51, 100, 10, 1)});
    ASSERT_EQ(engine.initiate(holder, 1s, WallClock{}).size(), 1u);
    Actions out = engine.initiate(refused, 1s, WallClock{});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, Action::Kind::drop);
    EXPECT_EQ(out[0].reason, EngineDrop::index_table_full);
    EXPECT_EQ(engine.drops(EngineDrop::index_table_full), 1u);
    EXPECT_EQ(engine.peer(refused)->handshake.local_index, 0u);
    EXPECT_EQ(engine.index_count(), 1u);
}

}  // namespace
}  // namespace meshgate::control
