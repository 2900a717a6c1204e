// Handshake benchmarks on one core; items_per_second = messages handled per second.
//
//   handshake/responder  consume an initiation and create the response (the engine's whole
//                        path: MACs, both halves of the Noise IK pattern, index, keypair), ;
//                        /1 one message at a time, /32 in bursts as the control lcore
//                        drains them
//   handshake/initiator  create an initiation, and consume the response to it
//   cookie/reply         an initiation without mac2 under load, answered with a cookie reply
//   mac1/verify          mac1 of an initiation checked (what every handshake message costs)
#include <benchmark/benchmark.h>

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "control/engine.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::bench {
namespace {

using control::Action;
using control::Endpoint;
using control::Engine;
using namespace std::chrono_literals;

const Endpoint responder_endpoint = Endpoint::v4(198, 51, 100, 1, 51820);
const Endpoint initiator_endpoint = Endpoint::v4(198, 51, 100, 2, 40000);
const control::WallClock epoch{std::chrono::seconds(1'700'000'000)};

std::vector<std::uint8_t> first_datagram(const control::Actions& actions) {
    for (const Action& action : actions) {
        if (action.kind == Action::Kind::send_to) {
            return action.bytes;
        }
    }
    return {};
}

// A responder with `count` configured initiators, each able to produce initiations.
struct Population {
    Engine responder{crypto::generate_private_key(), control::ProtocolConfig{}};
    std::vector<std::unique_ptr<Engine>> initiators;
    std::vector<control::PeerId> responder_at;  // responder as initiator i knows it

    explicit Population(unsigned count) {
        for (unsigned i = 0; i < count; ++i) {
            initiators.push_back(std::make_unique<Engine>(crypto::generate_private_key(),
                                                          control::ProtocolConfig{}));
            responder.add_peer({.public_key = initiators.back()->public_key()});
            responder_at.push_back(*initiators.back()->add_peer(
                {.public_key = responder.public_key(), .endpoint = responder_endpoint}));
        }
    }

    // An initiation from initiator i, with a wall time that keeps timestamps increasing.
    std::vector<std::uint8_t> initiation(unsigned i, control::Duration now,
                                         control::WallClock wall) {
        return first_datagram(initiators[i]->initiate(responder_at[i], now, wall));
    }
};

// Initiations from 256 peers, handed to the responder `burst` at a time: 1 is on_datagram,
// more is on_datagrams as the control lcore calls it with what one pass drained from its
// ring (its initiations' Diffie-Hellman terms computed together).
void handshake_responder(benchmark::State& state) {
    constexpr unsigned peers = 256;
    const auto burst = static_cast<unsigned>(state.range(0));
    Population population(peers);
    std::deque<std::vector<std::uint8_t>> ready;
    control::Duration now = 1h;
    control::Duration initiator_now = 1h;
    std::int64_t round = 0;
    std::int64_t handled = 0;
    std::vector<control::Datagram> datagrams;
    for (auto _ : state) {
        if (ready.size() < burst) {
            state.PauseTiming();
            // Each initiator's clock moves past REKEY_TIMEOUT between its initiations, and the
            // wall clock by a second so every TAI64N is newer than the last.
            initiator_now += 6s;
            ++round;
            for (unsigned i = 0; i < peers; ++i) {
                ready.push_back(
                    population.initiation(i, initiator_now, epoch + std::chrono::seconds(round)));
            }
            state.ResumeTiming();
        }
        // 25 ms per message: each peer's initiations arrive 6.4 s apart, far from the
        // 50-per-second flood limit.
        now += 25ms * burst;
        control::Actions actions;
        if (burst == 1) {
            actions = population.responder.on_datagram(ready.front(), initiator_endpoint, now,
                                                       epoch, false);
        } else {
            datagrams.clear();
            for (unsigned i = 0; i < burst; ++i) {
                datagrams.push_back({ready[i], initiator_endpoint});
            }
            actions = population.responder.on_datagrams(datagrams, now, epoch, false);
        }
        for (unsigned i = 0; i < burst; ++i) {
            ready.pop_front();
        }
        for (const Action& action : actions) {
            handled += action.kind == Action::Kind::send_to &&
                       action.bytes.size() == sizeof(control::Response);
        }
    }
    if (handled != static_cast<std::int64_t>(state.iterations() * burst)) {
        state.SkipWithError("responder refused benchmark initiations");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

void handshake_initiator(benchmark::State& state) {
    Population population(1);
    Engine& initiator = *population.initiators[0];
    control::Duration now = 1h;
    std::int64_t completed = 0;
    for (auto _ : state) {
        now += 6s;  // past REKEY_TIMEOUT, so initiate() always sends
        auto initiation = population.initiation(
            0, now, epoch + std::chrono::duration_cast<std::chrono::seconds>(now));
        state.PauseTiming();
        auto response = first_datagram(
            population.responder.on_datagram(initiation, initiator_endpoint, now, epoch, false));
        state.ResumeTiming();
        auto actions = initiator.on_datagram(response, responder_endpoint, now, epoch, false);
        completed += actions.empty() ? 0 : 1;
    }
    if (completed != static_cast<std::int64_t>(state.iterations())) {
        state.SkipWithError("initiator failed to complete handshakes");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void cookie_reply(benchmark::State& state) {
    Population population(1);
    auto initiation = population.initiation(0, 1h, epoch);
    std::int64_t replies = 0;
    for (auto _ : state) {
        auto actions =
            population.responder.on_datagram(initiation, initiator_endpoint, 1h, epoch, true);
        replies += first_datagram(actions).size() == sizeof(control::CookieReply) ? 1 : 0;
    }
    if (replies != static_cast<std::int64_t>(state.iterations())) {
        state.SkipWithError("no cookie reply");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void mac1_verify(benchmark::State& state) {
    Population population(1);
    auto initiation = population.initiation(0, 1h, epoch);
    control::CookieChecker checker(population.responder.public_key());
    control::ProtocolConfig config;
    for (auto _ : state) {
        benchmark::DoNotOptimize(checker.check(initiation, initiator_endpoint, false, 1h, config));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace
}  // namespace meshgate::bench

BENCHMARK(meshgate::bench::handshake_responder)->Name("handshake/responder")->Arg(1)->Arg(32);
BENCHMARK(meshgate::bench::handshake_initiator)->Name("handshake/initiator");
BENCHMARK(meshgate::bench::cookie_reply)->Name("cookie/reply");
BENCHMARK(meshgate::bench::mac1_verify)->Name("mac1/verify");
BENCHMARK_MAIN();
