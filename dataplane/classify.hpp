// Classify: the first stage of the worker loop. Splits a received burst into
//   data       WireGuard transport data (type 4) for us        -> decap
//   handshake  WireGuard types 1-3 for us                      -> control thread's ring
//   neighbour  ARP, and ICMPv6 neighbour solicit/advertisement -> control thread's ring
// and drops everything else, counted by reason. Packets keep their order within each class.
// Runs on a worker lcore; reads only its own ClassifyContext copy.
#pragma once

#include <rte_ether.h>

#include <array>
#include <cstdint>

#include "dataplane/burst.hpp"
#include "dataplane/counters.hpp"

namespace meshgate::dataplane {

// WireGuard message types and sizes (whitepaper §5.4), as the wire has them.
namespace wire {
inline constexpr std::uint32_t handshake_initiation = 1;
inline constexpr std::uint32_t handshake_response = 2;
inline constexpr std::uint32_t cookie_reply = 3;
inline constexpr std::uint32_t transport_data = 4;
inline constexpr std::uint16_t initiation_size = 148;
inline constexpr std::uint16_t response_size = 92;
inline constexpr std::uint16_t cookie_reply_size = 64;
inline constexpr std::uint16_t data_header_size = 16;  // type, receiver index, counter
inline constexpr std::uint16_t data_minimum_size = data_header_size + 16;  // + tag: a keepalive
}  // namespace wire

// What a worker must know to tell our packets from others'. Hot: copied into each worker.
struct alignas(64) ClassifyContext {
    rte_ether_addr mac{};
    std::uint32_t ipv4 = 0;  // network order; 0 = the port has no IPv4 address
    std::array<std::uint8_t, 16> ipv6{};
    bool has_ipv6 = false;
    std::uint16_t listen_port = 0;  // host order
};

struct Classified {
    Burst<> data;
    Burst<> handshake;
    Burst<> neighbour;
    void clear() {
        data.clear();
        handshake.clear();
        neighbour.clear();
    }
};

// Consumes every packet of `received`: each ends in one of `out`'s bursts or is dropped.
void classify(const Burst<>& received, const ClassifyContext& context, Classified& out,
              WorkerCounters& counters);

// What classify() decides for one frame, and why it drops it.
enum class FrameClass : std::uint8_t { data, handshake, neighbour, drop };
struct FrameVerdict {
    FrameClass kind;
    Drop reason = Drop::not_ip;
};

// The two ways classify() decides, exposed for the tests that hold them to each other:
// - classify_frame: the general parse (any frame: parse_outer, address, port, message type);
// - is_transport_data_v4: the common frame in one pass (an option-less, unfragmented IPv4
//   header, UDP to our address and listen port, a transport data message). True only for
//   frames classify_frame calls data, with the same l2_len/l3_len/l4_len set; false sends
//   the frame to classify_frame.
FrameVerdict classify_frame(rte_mbuf* packet, const ClassifyContext& context);
bool is_transport_data_v4(rte_mbuf* packet, const ClassifyContext& context);

}  // namespace meshgate::dataplane
