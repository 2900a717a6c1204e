// Where a message came from or goes to: an IPv4 or IPv6 address and a UDP port. Plain data
// (no sockets, no DPDK), so the engine stays I/O-free.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshgate::control {

struct Endpoint {
    std::array<std::uint8_t, 16> address{};  // IPv4 in the first 4 bytes
    bool is_v6 = false;
    std::uint16_t port = 0;  // host order

    static Endpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                       std::uint16_t port) {
        Endpoint e;
        e.address[0] = a, e.address[1] = b, e.address[2] = c, e.address[3] = d;
        e.port = port;
        return e;
    }
    bool operator==(const Endpoint&) const = default;

    // "198.51.100.1:51820" or "[2001:db8::1]:51820".
    std::string to_string() const;
    // The same forms back; nullopt for anything else (no names, no DNS).
    static std::optional<Endpoint> parse(std::string_view text);
};

}  // namespace meshgate::control
