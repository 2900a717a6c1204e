// Uplink classify: the first stage for frames from the uplink port (the exit node's side
// toward the internet). Splits a received burst into
//   inbound    IPv4/IPv6 addressed to the uplink's own address  -> NAT (Ethernet stripped)
//   neighbour  ARP, and ICMPv6 neighbour solicitation/advertisement -> control thread's ring
// and drops everything else, counted by reason (the port runs promiscuous: frames for other
// hosts on the uplink's network arrive too). Packets keep their order within each class.
// Runs on a worker lcore or the control lcore; reads only its own UplinkContext copy.
#pragma once

#include <rte_ether.h>

#include <array>
#include <cstdint>

#include "dataplane/burst.hpp"
#include "dataplane/counters.hpp"

namespace meshgate::dataplane {

// The uplink's own addresses, as the classify stage compares them. Hot: one copy per worker.
struct alignas(64) UplinkContext {
    std::uint16_t port = 0;  // stamped on neighbour frames: the control thread answers there
    rte_ether_addr mac{};
    std::uint32_t ipv4 = 0;  // network order; 0 = no IPv4 address on the uplink
    std::array<std::uint8_t, 16> ipv6{};
    bool has_ipv6 = false;
};

struct UplinkClassified {
    Burst<> inbound;  // data starts at the IP header
    Burst<> neighbour;
};

// Consumes every packet of `received`: each ends in one of `out`'s bursts or is dropped.
void classify_uplink(const Burst<>& received, const UplinkContext& context, UplinkClassified& out,
                     WorkerCounters& counters);

}  // namespace meshgate::dataplane
