// IP protocol numbers and the ICMP / ICMPv6 message types the data plane acts on, in one
// place for every stage that parses or builds packets (IANA registries; RFC 792, RFC 4443,
// RFC 4861).
#pragma once

#include <cstdint>

namespace meshgate::dataplane {

inline constexpr std::uint8_t protocol_icmp = 1;
inline constexpr std::uint8_t protocol_tcp = 6;
inline constexpr std::uint8_t protocol_udp = 17;
inline constexpr std::uint8_t protocol_icmpv6 = 58;

inline constexpr std::uint8_t icmp_echo_reply = 0;
inline constexpr std::uint8_t icmp_unreachable = 3;  // includes code 4, fragmentation needed
inline constexpr std::uint8_t icmp_echo_request = 8;
inline constexpr std::uint8_t icmp_time_exceeded = 11;
inline constexpr std::uint8_t icmp_parameter_problem = 12;

inline constexpr std::uint8_t icmpv6_unreachable = 1;
inline constexpr std::uint8_t icmpv6_packet_too_big = 2;
inline constexpr std::uint8_t icmpv6_time_exceeded = 3;
inline constexpr std::uint8_t icmpv6_parameter_problem = 4;
inline constexpr std::uint8_t icmpv6_echo_request = 128;
inline constexpr std::uint8_t icmpv6_echo_reply = 129;
inline constexpr std::uint8_t icmpv6_neighbour_solicitation = 135;
inline constexpr std::uint8_t icmpv6_neighbour_advertisement = 136;

}  // namespace meshgate::dataplane
