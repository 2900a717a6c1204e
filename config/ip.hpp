// IP addresses and prefixes as configuration values: parsed from text, printed back, and
// compared. Plain data (no YAML, no DPDK), usable by every module.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshgate::config {

struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes
    bool is_v6 = false;

    static std::optional<IpAddress> parse(std::string_view text);
    std::string to_string() const;
    unsigned bits() const { return is_v6 ? 128 : 32; }
    auto operator<=>(const IpAddress&) const = default;
};

struct Prefix {
    IpAddress address;  // as written: an interface address keeps its host bits
    std::uint8_t length = 0;

    // "10.0.0.1/24", "fd00::/64"; a bare address means a host prefix (/32 or /128).
    static std::optional<Prefix> parse(std::string_view text);
    std::string to_string() const;
    Prefix network() const;  // host bits cleared
    bool contains(const IpAddress& address) const;
    bool overlaps(const Prefix& other) const;
    auto operator<=>(const Prefix&) const = default;
};

}  // namespace meshgate::config
