#include "control/endpoint.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace meshgate::control {

std::string Endpoint::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(is_v6 ? AF_INET6 : AF_INET, address.data(), text, sizeof(text));
    std::string out;
    out.reserve(INET6_ADDRSTRLEN + 8);
    if (is_v6) {
        out.push_back('[');
    }
    out.append(text);
    if (is_v6) {
        out.push_back(']');
    }
    out.push_back(':');
    out.append(std::to_string(port));
    return out;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
    Endpoint out;
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        out.is_v6 = true;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
    }
    unsigned port = 0;
    auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
        port_text.empty()) {
        return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(port);
    if (inet_pton(out.is_v6 ? AF_INET6 : AF_INET, host.c_str(), out.address.data()) != 1) {
        return std::nullopt;
    }
    return out;
}

}  // namespace meshgate::control
