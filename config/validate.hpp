// Checks across values that parsing alone cannot see: duplicate or self peers, allowed IPs
// that overlap between peers or cover the gateway's own tunnel addresses, ports, and the
// exit node (an uplink for peers allowed to exit, uplink ports for every worker).
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"

namespace meshgate::config {

// The first problem found, as "file:line:column: what is wrong", or nothing.
std::optional<std::string> validate(const Config& config);

}  // namespace meshgate::config
