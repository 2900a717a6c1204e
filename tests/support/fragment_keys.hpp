// A fragmented IPv4 UDP datagram's key (fragment_map.hpp) for tests: 198.51.100.7 to
// 203.0.113.1, told apart by its identification.
#pragma once

#include <cstdint>

#include "dataplane/fragment_map.hpp"

namespace meshgate::test {

inline dataplane::FragmentKey datagram_key(
    std::uint32_t identification,
    dataplane::FragmentDirection direction = dataplane::FragmentDirection::to_uplink) {
    dataplane::FragmentKey key;
    key.version = 4;
    key.protocol = 17;
    key.direction = direction;
    key.identification = identification;
    key.source = {198, 51, 100, 7};
    key.destination = {203, 0, 113, 1};
    return key;
}

}  // namespace meshgate::test
