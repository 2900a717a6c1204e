#include "config/ip.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace meshgate::config {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    IpAddress out;
    std::string copy(text);
    out.is_v6 = copy.find(':') != std::string::npos;
    if (inet_pton(out.is_v6 ? AF_INET6 : AF_INET, copy.c_str(), out.bytes.data()) != 1) {
        return std::nullopt;
    }
    return out;
}

std::string IpAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(is_v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof(text));
    return text;
}

std::optional<Prefix> Prefix::parse(std::string_view text) {
    const auto slash = text.find('/');
    auto address = IpAddress::parse(text.substr(0, slash));
    if (!address) {
        return std::nullopt;
    }
    Prefix out{*address, static_cast<std::uint8_t>(address->bits())};
    if (slash != std::string_view::npos) {
        std::string_view length_text = text.substr(slash + 1);
        unsigned length = 0;
        auto [end, error] =
            std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
        if (length_text.empty() || error != std::errc{} ||
            end != length_text.data() + length_text.size() || length > address->bits()) {
            return std::nullopt;
        }
        out.length = static_cast<std::uint8_t>(length);
    }
    return out;
}

std::string Prefix::to_string() const {
    return address.to_string() + "/" + std::to_string(length);
}

Prefix Prefix::network() const {
    Prefix out = *this;
    for (unsigned byte = 0; byte < 16; ++byte) {
        unsigned first_bit = byte * 8;
        if (first_bit >= length) {
            out.address.bytes[byte] = 0;
        } else if (first_bit + 8 > length) {
            out.address.bytes[byte] &= static_cast<std::uint8_t>(0xFF00u >> (length - first_bit));
        }
    }
    return out;
}

bool Prefix::contains(const IpAddress& other) const {
    if (other.is_v6 != address.is_v6) {
        return false;
    }
    return Prefix{other, length}.network().address == network().address;
}

bool Prefix::overlaps(const Prefix& other) const {
    if (other.address.is_v6 != address.is_v6) {
        return false;
    }
    // Two prefixes overlap exactly when the shorter one contains the longer one's network.
    const Prefix& shorter = length <= other.length ? *this : other;
    const Prefix& longer = length <= other.length ? other : *this;
    return shorter.contains(longer.address);
}

}  // namespace meshgate::config
