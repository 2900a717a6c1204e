// transport_in_dataplane: the engine never seals transport data itself (the workers own the
// counters), asks for `transmit` instead, and runs its timers on the workers' reports.
#include <gtest/gtest.h>

#include "tests/support/engine_pair.hpp"

namespace meshgate::control {
namespace {

using test::ipv4_packet;

struct GatewayAndClient {
    test::FakeClock clock;
    crypto::PrivateKey gateway_key = crypto::generate_private_key();
    crypto::PrivateKey client_key = crypto::generate_private_key();
    Engine gateway;
    Engine client;
    PeerId client_at_gateway;
    PeerId gateway_at_client;
    Endpoint gateway_endpoint = Endpoint::v4(198, 51, 100, 1, 51820);
    Endpoint client_endpoint = Endpoint::v4(198, 51, 100, 2, 40000);

    static ProtocolConfig gateway_config() {
        ProtocolConfig config = test::deterministic_config();
        config.transport_in_dataplane = true;
        return config;
    }

    GatewayAndClient()
        : gateway(gateway_key, gateway_config()), client(client_key, test::deterministic_config()) {
        client_at_gateway = *gateway.add_peer({.public_key = client.public_key()});
        gateway_at_client =
            *client.add_peer({.public_key = gateway.public_key(), .endpoint = gateway_endpoint});
    }

    // The client initiates; the gateway answers (its keypair is `next` until confirmed).
    void handshake() {
        Actions initiation = client.initiate(gateway_at_client, clock.now, clock.wall);
        Actions response =
            gateway.on_datagram(initiation[0].bytes, client_endpoint, clock.now, clock.wall, false);
        for (const Action& action : response) {
            if (action.kind == Action::Kind::send_to) {
                client.on_datagram(action.bytes, gateway_endpoint, clock.now, clock.wall, false);
            }
        }
    }
};

std::size_t count(const Actions& actions, Action::Kind kind) {
    std::size_t n = 0;
    for (const Action& action : actions) {
        n += action.kind == kind;
    }
    return n;
}

TEST(DataplaneMode, PacketsBecomeTransmitActionsNeverSealedBytes) {
    GatewayAndClient world;
    world.handshake();
    // Before confirmation the responder has no current keypair: the packet waits.
    Actions early = world.gateway.send(world.client_at_gateway, ipv4_packet(60, 1), world.clock.now,
                                       world.clock.wall);
    EXPECT_EQ(count(early, Action::Kind::transmit), 0u);
    EXPECT_EQ(world.gateway.peer(world.client_at_gateway)->staged.size(), 1u);

    // The worker reports the first packet on `next`: confirmed, and the staged packet goes.
    Actions confirmed = world.gateway.on_dataplane_activity(
        world.client_at_gateway, {.authenticated_received = true, .next_confirmed = true},
        world.clock.now, world.clock.wall);
    EXPECT_EQ(count(confirmed, Action::Kind::transmit), 1u);
    EXPECT_EQ(count(confirmed, Action::Kind::send_to), 0u) << "the engine must not seal data";
    EXPECT_NE(world.gateway.peer(world.client_at_gateway)->keypairs.current(), nullptr);

    Actions later = world.gateway.send(world.client_at_gateway, ipv4_packet(60, 2), world.clock.now,
                                       world.clock.wall);
    ASSERT_EQ(count(later, Action::Kind::transmit), 1u);
    EXPECT_EQ(later[0].bytes, ipv4_packet(60, 2));
    EXPECT_EQ(world.gateway.peer(world.client_at_gateway)->keypairs.current()->sending_counter, 0u)
        << "the engine's own counter is never used in this mode";
}

TEST(DataplaneMode, KeepaliveTimerRunsOnWorkerReports) {
    GatewayAndClient world;
    world.handshake();
    world.gateway.on_dataplane_activity(
        world.client_at_gateway,
        {.authenticated_received = true, .data_received = true, .next_confirmed = true},
        world.clock.now, world.clock.wall);
    world.clock.advance(10s);
    Actions due = world.gateway.tick(world.clock.now, world.clock.wall);
    ASSERT_EQ(count(due, Action::Kind::transmit), 1u);
    for (const Action& action : due) {
        if (action.kind == Action::Kind::transmit) {
            EXPECT_TRUE(action.bytes.empty()) << "a keepalive";
        }
    }
}

TEST(DataplaneMode, RekeyAfterMessagesFromTheWorkersCounter) {
    ProtocolConfig config = GatewayAndClient::gateway_config();
    GatewayAndClient world;
    world.handshake();
    world.gateway.on_dataplane_activity(world.client_at_gateway,
                                        {.authenticated_received = true, .next_confirmed = true},
                                        world.clock.now, world.clock.wall);
    world.gateway.peer(world.client_at_gateway)->endpoint = world.client_endpoint;
    Actions rekey =
        world.gateway.on_dataplane_activity(world.client_at_gateway,
                                            {.authenticated_sent = true,
                                             .data_sent = true,
                                             .sending_counter = config.rekey_after_messages},
                                            world.clock.now, world.clock.wall);
    ASSERT_EQ(count(rekey, Action::Kind::send_to), 1u);
    EXPECT_EQ(rekey[0].bytes.size(), sizeof(Initiation));
}

}  // namespace
}  // namespace meshgate::control
