// libFuzzer target: any bytes as a UDP datagram to the protocol engine, under load or not,
// from a peer with an established session; or, when the first byte says so, cut into four
// datagrams handed over as one burst (on_datagrams, the batched path). Every input must end
// as actions or counted drops.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "control/engine.hpp"
#include "crypto/x25519.hpp"

namespace {

struct World {
    meshgate::control::Engine engine{meshgate::crypto::generate_private_key(),
                                     meshgate::control::ProtocolConfig{}};
    meshgate::control::Engine peer{meshgate::crypto::generate_private_key(),
                                   meshgate::control::ProtocolConfig{}};
    meshgate::control::Endpoint from = meshgate::control::Endpoint::v4(198, 51, 100, 2, 40000);
    World() { engine.add_peer({.public_key = peer.public_key()}); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World world;
    static std::int64_t tick = 0;
    const bool under_load = size > 0 && (data[0] & 0x80) != 0;
    auto now = std::chrono::nanoseconds(++tick * 1'000'000);
    const auto wall = std::chrono::system_clock::time_point{};
    if (size > 0 && (data[0] & 0x40) != 0) {
        std::vector<meshgate::control::Datagram> burst;
        const std::size_t piece = size / 4;
        for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t length = i == 3 ? size - 3 * piece : piece;
            burst.push_back({{data + i * piece, length}, world.from});
        }
        auto actions = world.engine.on_datagrams(burst, now, wall, under_load);
        (void)actions;
        return 0;
    }
    auto actions = world.engine.on_datagram({data, size}, world.from, now, wall, under_load);
    (void)actions;
    return 0;
}
