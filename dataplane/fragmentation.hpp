// IPv4 fragmentation (RFC 791 §3.2, RFC 1812 §5.2.6), for packets a router must forward
// through a link narrower than they are: answers from the internet, up to the uplink's MTU,
// going into a tunnel of 1420 bytes. Only IPv4 without "don't fragment" may be split; IPv6
// routers never fragment (RFC 8200 §5).
//
// Each fragment is a new single-segment mbuf from the packet's own pool, holding a copy of the
// header and its slice of the data, so the seal that follows works on one contiguous buffer
// (DPDK's rte_ipv4_fragment_packet chains indirect segments instead). Cold in practice: only
// oversized packets come here.
//
// Any lcore; no state.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

namespace meshgate::dataplane {

// The most fragments one packet is split into here: a 1500-byte packet into a 1420-byte
// tunnel needs 2; a reassembled datagram near 64 KiB could need 47, and is refused instead.
constexpr unsigned max_fragments = 8;

enum class FragmentResult : std::uint8_t {
    fragmented,   // `fragments` hold the pieces; the packet was freed
    not_allowed,  // IPv6, DF set, or options that do not parse: the packet is untouched
    too_many,     // more than max_fragments pieces, or no mbufs: the packet is untouched
};

// Splits `packet` (an IPv4 packet at the mbuf's data start) into pieces of at most `mtu`
// bytes; one whose header's total length already fits comes back as one piece of that length.
// Each piece keeps the packet's packet_meta. The first piece keeps the header's options;
// the others carry only those marked "copied" (RFC 791 §3.2). A packet that is itself a
// fragment is split further, its offsets kept and "more fragments" kept on its last piece.
FragmentResult fragment_ipv4(rte_mbuf* packet, std::uint16_t mtu,
                             rte_mbuf* fragments[max_fragments], unsigned& count);

}  // namespace meshgate::dataplane
