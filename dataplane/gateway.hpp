// The gateway assembled from a configuration: EAL, the WAN port, the shared tables, one
// worker per configured lcore, and the control loop on the main lcore. Cold code.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace meshgate::dataplane {

// Runs until SIGINT or SIGTERM. Returns the process exit status; start-up problems are
// printed as one clear line each.
int run_gateway(const config::Config& config, const std::vector<std::string>& eal_overrides,
                const std::string& control_socket);

// `meshgate show`: asks the running gateway for its counters over the control socket.
int show_gateway(const std::string& control_socket);

inline const char* default_control_socket = "/run/meshgate/meshgate.sock";

}  // namespace meshgate::dataplane
