// Two protocol engines talking in one process, with a fake clock: the harness for the
// control engine's unit tests (as wireguard-go tests two devices in one process).
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "control/engine.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::test {

using control::Action;
using control::Actions;
using control::Endpoint;
using control::Engine;
using control::PeerId;

struct FakeClock {
    control::Timestamp now{std::chrono::hours(1)};
    control::WallClock wall{std::chrono::seconds(1'700'000'000)};
    void advance(control::Duration by) {
        now += by;
        wall += std::chrono::duration_cast<std::chrono::system_clock::duration>(by);
    }
};

inline control::ProtocolConfig deterministic_config() {
    control::ProtocolConfig config;
    config.rekey_timeout_jitter_max = control::Duration{0};
    return config;
}

struct EnginePair {
    crypto::PrivateKey a_key = crypto::generate_private_key();
    crypto::PrivateKey b_key = crypto::generate_private_key();
    Endpoint a_endpoint = Endpoint::v4(198, 51, 100, 1, 51820);
    Endpoint b_endpoint = Endpoint::v4(198, 51, 100, 2, 51821);
    Engine a;
    Engine b;
    PeerId b_at_a = 0;  // B as A knows it
    PeerId a_at_b = 0;  // A as B knows it
    FakeClock clock;
    bool b_under_load = false;
    bool a_under_load = false;
    std::vector<std::vector<std::uint8_t>> delivered_to_a, delivered_to_b;
    std::vector<Action> a_log, b_log;  // every action each engine produced

    explicit EnginePair(control::ProtocolConfig config = deterministic_config(),
                        crypto::PresharedKey a_psk = {}, crypto::PresharedKey b_psk = {})
        : a(a_key, config), b(b_key, config) {
        b_at_a = *a.add_peer(
            {.public_key = b.public_key(), .preshared_key = a_psk, .endpoint = b_endpoint});
        a_at_b = *b.add_peer(
            {.public_key = a.public_key(), .preshared_key = b_psk, .endpoint = a_endpoint});
    }

    // Carries out actions from one engine: datagrams go to the other, until quiet.
    void pump_from_a(Actions actions) { pump(std::move(actions), true); }
    void pump_from_b(Actions actions) { pump(std::move(actions), false); }

    void pump(Actions actions, bool from_a) {
        struct Pending {
            Actions actions;
            bool from_a;
        };
        std::vector<Pending> queue{{std::move(actions), from_a}};
        while (!queue.empty()) {
            Pending next = std::move(queue.front());
            queue.erase(queue.begin());
            for (Action& action : next.actions) {
                (next.from_a ? a_log : b_log).push_back(action);
                if (action.kind == Action::Kind::deliver) {
                    (next.from_a ? delivered_to_a : delivered_to_b).push_back(action.bytes);
                }
                if (action.kind != Action::Kind::send_to || drop_next_) {
                    drop_next_ = drop_next_ && action.kind != Action::Kind::send_to;
                    continue;
                }
                Engine& receiver = next.from_a ? b : a;
                const Endpoint& source = next.from_a ? a_endpoint : b_endpoint;
                bool load = next.from_a ? b_under_load : a_under_load;
                if (intercept_ && intercept_(action.bytes, next.from_a)) {
                    continue;
                }
                queue.push_back(
                    {receiver.on_datagram(action.bytes, source, clock.now, clock.wall, load),
                     !next.from_a});
            }
        }
    }

    // Lets a test see (and swallow, by returning true) every datagram in flight.
    void intercept(std::function<bool(const std::vector<std::uint8_t>&, bool from_a)> f) {
        intercept_ = std::move(f);
    }

    void handshake() { pump_from_a(a.initiate(b_at_a, clock.now, clock.wall)); }

    void tick_both() {
        pump_from_a(a.tick(clock.now, clock.wall));
        pump_from_b(b.tick(clock.now, clock.wall));
    }

    static std::size_t count(const std::vector<Action>& log, Action::Kind kind) {
        std::size_t n = 0;
        for (const Action& action : log) {
            n += action.kind == kind ? 1 : 0;
        }
        return n;
    }

  private:
    bool drop_next_ = false;
    std::function<bool(const std::vector<std::uint8_t>&, bool)> intercept_;
};

// An IPv4 packet of `length` bytes (a minimal header, so the engine can trim padding).
inline std::vector<std::uint8_t> ipv4_packet(std::size_t length, std::uint8_t fill) {
    std::vector<std::uint8_t> packet(length, fill);
    packet[0] = 0x45;
    packet[2] = static_cast<std::uint8_t>(length >> 8);
    packet[3] = static_cast<std::uint8_t>(length);
    return packet;
}

}  // namespace meshgate::test
