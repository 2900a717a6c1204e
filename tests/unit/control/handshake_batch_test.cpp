// Engine::on_datagrams: a burst of handshake messages, with the initiations' Diffie-Hellman
// terms computed together. It must end exactly where on_datagram one message at a time
// would, apart from the order of the actions.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "control/engine.hpp"
#include "tests/support/engine_pair.hpp"

namespace meshgate::control {
namespace {

using namespace std::chrono_literals;
using test::FakeClock;

// Enough for full eight-lane dh_batch passes in both DH passes (12 "es", 36 after).
constexpr unsigned initiator_count = 12;

// One responder key, two responder engines (one fed in bursts, one message by message),
// and initiators every responder knows, plus one it does not.
struct BurstFixture : ::testing::Test {
    ProtocolConfig config = test::deterministic_config();
    crypto::PrivateKey responder_key = crypto::generate_private_key();
    Engine batched{responder_key, config};
    Engine single{responder_key, config};
    std::vector<std::unique_ptr<Engine>> initiators;
    std::vector<PeerId> responder_at;
    std::vector<Endpoint> endpoints;
    Engine stranger{crypto::generate_private_key(), config};
    PeerId responder_at_stranger = 0;
    FakeClock clock;

    BurstFixture() {
        const Endpoint responder_endpoint = Endpoint::v4(203, 0, 113, 1, 51820);
        for (unsigned i = 0; i < initiator_count; ++i) {
            initiators.push_back(std::make_unique<Engine>(crypto::generate_private_key(), config));
            endpoints.push_back(Endpoint::v4(198, 51, 100, static_cast<std::uint8_t>(10 + i),
                                             static_cast<std::uint16_t>(40000 + i)));
            for (Engine* responder : {&batched, &single}) {
                EXPECT_TRUE(responder->add_peer({.public_key = initiators.back()->public_key()}));
            }
            responder_at.push_back(*initiators.back()->add_peer(
                {.public_key = batched.public_key(), .endpoint = responder_endpoint}));
        }
        responder_at_stranger = *stranger.add_peer(
            {.public_key = batched.public_key(), .endpoint = responder_endpoint});
    }

    std::vector<std::uint8_t> initiation_from(Engine& initiator, PeerId responder) {
        Actions actions = initiator.initiate(responder, clock.now, clock.wall);
        EXPECT_EQ(actions.size(), 1u);
        return actions.at(0).bytes;
    }

    static std::size_t responses(const Actions& actions) {
        std::size_t count = 0;
        for (const Action& action : actions) {
            count +=
                action.kind == Action::Kind::send_to && action.bytes.size() == sizeof(Response);
        }
        return count;
    }

    void expect_same_drops() {
        for (std::size_t reason = 0; reason < engine_drop_count; ++reason) {
            EXPECT_EQ(batched.drops(static_cast<EngineDrop>(reason)),
                      single.drops(static_cast<EngineDrop>(reason)))
                << engine_drop_name(static_cast<EngineDrop>(reason));
        }
    }
};

TEST_F(BurstFixture, EveryInitiationInABurstIsAnsweredAndCompletes) {
    std::vector<std::vector<std::uint8_t>> messages;
    for (unsigned i = 0; i < initiator_count; ++i) {
        messages.push_back(initiation_from(*initiators[i], responder_at[i]));
    }
    messages.push_back({1, 2, 3});  // garbage in the same burst
    std::vector<Datagram> burst;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        burst.push_back({messages[i], endpoints[i % initiator_count]});
    }
    Actions actions = batched.on_datagrams(burst, clock.now, clock.wall, false);
    EXPECT_EQ(responses(actions), initiator_count);
    EXPECT_EQ(batched.drops(EngineDrop::bad_length), 1u);

    // Each response goes to its initiator's address, and each initiator completes with it.
    for (const Action& action : actions) {
        if (action.kind != Action::Kind::send_to) {
            continue;
        }
        unsigned i = 0;
        while (i < initiator_count && !(endpoints[i] == action.endpoint)) {
            ++i;
        }
        ASSERT_LT(i, initiator_count);
        initiators[i]->on_datagram(action.bytes, Endpoint::v4(203, 0, 113, 1, 51820), clock.now,
                                   clock.wall, false);
        EXPECT_NE(initiators[i]->peer(responder_at[i])->keypairs.current(), nullptr) << i;
    }
}

TEST_F(BurstFixture, BadInitiationsEndAsTheyDoOneByOne) {
    std::vector<std::vector<std::uint8_t>> messages;
    std::vector<Endpoint> from;
    auto add = [&](std::vector<std::uint8_t> bytes, const Endpoint& source) {
        messages.push_back(std::move(bytes));
        from.push_back(source);
    };
    add(initiation_from(*initiators[0], responder_at[0]), endpoints[0]);
    add(messages[0], endpoints[0]);                                       // replayed
    add(initiation_from(stranger, responder_at_stranger), endpoints[1]);  // unknown peer
    add(initiation_from(*initiators[1], responder_at[1]), endpoints[1]);
    initiators[1]->peer(responder_at[1])->timers.last_initiation_sent.reset();
    clock.wall += 1s;  // a newer timestamp, but within the flood interval
    add(initiation_from(*initiators[1], responder_at[1]), endpoints[1]);
    auto corrupted = initiation_from(*initiators[2], responder_at[2]);
    corrupted[40] ^= 1;  // inside the encrypted static: mac1 fails first
    add(corrupted, endpoints[2]);
    // The same with mac1 made right again: it reaches the batched "es" and fails to decrypt.
    CookieMaker mac_maker(batched.public_key());
    mac_maker.add_macs(corrupted, clock.now, config);
    add(corrupted, endpoints[2]);
    // A low-order ephemeral key: "es" comes out all zeros.
    auto low_order = initiation_from(*initiators[3], responder_at[3]);
    std::fill(low_order.begin() + 8, low_order.begin() + 40, 0);
    mac_maker.add_macs(low_order, clock.now, config);
    add(low_order, endpoints[3]);

    std::vector<Datagram> burst;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        burst.push_back({messages[i], from[i]});
    }
    Actions together = batched.on_datagrams(burst, clock.now, clock.wall, false);
    std::size_t one_by_one = 0;
    for (const Datagram& datagram : burst) {
        one_by_one += responses(
            single.on_datagram(datagram.bytes, datagram.from, clock.now, clock.wall, false));
    }
    EXPECT_EQ(responses(together), 2u);
    EXPECT_EQ(one_by_one, 2u);
    expect_same_drops();
    EXPECT_EQ(batched.drops(EngineDrop::stale_timestamp), 1u);
    EXPECT_EQ(batched.drops(EngineDrop::unknown_peer), 1u);
    EXPECT_EQ(batched.drops(EngineDrop::initiation_flood), 1u);
    EXPECT_EQ(batched.drops(EngineDrop::bad_mac1), 1u);
    EXPECT_EQ(batched.drops(EngineDrop::bad_initiation), 2u);
}

TEST_F(BurstFixture, UnderLoadABurstWithoutCookiesGetsOnlyCookieReplies) {
    std::vector<std::vector<std::uint8_t>> messages;
    std::vector<Datagram> burst;
    for (unsigned i = 0; i < initiator_count; ++i) {
        messages.push_back(initiation_from(*initiators[i], responder_at[i]));
    }
    for (unsigned i = 0; i < initiator_count; ++i) {
        burst.push_back({messages[i], endpoints[i]});
    }
    Actions actions = batched.on_datagrams(burst, clock.now, clock.wall, true);
    EXPECT_EQ(responses(actions), 0u);
    EXPECT_EQ(batched.drops(EngineDrop::cookie_required), initiator_count);
    std::size_t cookie_replies = 0;
    for (const Action& action : actions) {
        cookie_replies +=
            action.kind == Action::Kind::send_to && action.bytes.size() == sizeof(CookieReply);
    }
    EXPECT_EQ(cookie_replies, initiator_count);
}

}  // namespace
}  // namespace meshgate::control
