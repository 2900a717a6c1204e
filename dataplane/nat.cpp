#include "dataplane/nat.hpp"

#include <rte_ip.h>
#include <rte_prefetch.h>

#include <emmintrin.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>

#include "dataplane/burst_scratch.hpp"
#include "dataplane/protocol_numbers.hpp"
#include "dataplane/table_memory.hpp"

namespace meshgate::dataplane {

// The headers of one packet as NAT sees them. Offsets are from the IP header.
struct NatPacket {
    std::uint8_t version = 0;            // 4 or 6
    std::uint8_t protocol = 0;           // the upper layer, after any IPv6 extension headers
    std::uint32_t l4 = 0;                // where the upper-layer header starts
    std::uint32_t end = 0;               // just past the packet, or past what a quote holds of it
    std::uint16_t source_port = 0;       // host order; ICMP echo: the identifier
    std::uint16_t destination_port = 0;  // ICMP echo: 0
    std::uint8_t tcp_flags = 0;
    std::uint8_t icmp_type = 0;
    // Fragments: the first carries the transport header, the later ones only data.
    enum class Fragment : std::uint8_t { none, first, later } fragment = Fragment::none;
    std::uint32_t identification = 0;  // of a fragmented datagram

    bool v6() const { return version == 6; }
    std::uint32_t address_length() const { return v6() ? 16 : 4; }
    std::uint32_t source_offset() const { return v6() ? 8 : 12; }
    std::uint32_t destination_offset() const { return v6() ? 24 : 16; }
};

namespace {

constexpr std::uint8_t tcp_fin = 0x01;
constexpr std::uint8_t tcp_syn = 0x02;
constexpr std::uint8_t tcp_rst = 0x04;

// Bytes an ICMP error carries before the quoted packet (type, code, checksum, 4 more).
constexpr std::uint32_t icmp_error_header = 8;

enum PoolIndex : unsigned { pool_tcp, pool_udp, pool_icmp };

// ---- bytes: headers are not aligned in general ------------------------------------------

std::uint16_t load16(const std::uint8_t* p) {
    std::uint16_t value;
    std::memcpy(&value, p, 2);
    return value;
}
void store16(std::uint8_t* p, std::uint16_t value) {
    std::memcpy(p, &value, 2);
}
std::uint16_t load_be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
void store_be16(std::uint8_t* p, std::uint16_t value) {
    p[0] = static_cast<std::uint8_t>(value >> 8);
    p[1] = static_cast<std::uint8_t>(value);
}

// An address is 4 or 16 bytes. Copied with its length a constant, it is one or two moves; with
// the length a variable, memcpy is a call (callgrind of exit_out/64/1000: ~15 instructions a
// copy, and a translation makes three).
void copy_address(std::uint8_t* to, const std::uint8_t* from, bool v6) {
    if (v6) {
        std::memcpy(to, from, 16);
    } else {
        std::memcpy(to, from, 4);
    }
}

bool is_icmp(std::uint8_t protocol) {
    return protocol == protocol_icmp || protocol == protocol_icmpv6;
}
// Both per packet (the uplink address of the packet's family): one compare each, where a byte
// loop and a memcmp call of variable length cost 60 instructions (callgrind, exit_in/64/1000).
bool is_zero(const IpAddress& address) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(address.bytes.data()));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_setzero_si128())) == 0xFFFF;
}
bool same_address(const std::uint8_t* field, const IpAddress& address, std::uint32_t length) {
    if (length == 4) {
        std::uint32_t value;
        std::memcpy(&value, field, 4);
        return value == address.v4_network_order();
    }
    return same_16_bytes(field, address.bytes.data());
}
unsigned pool_of(std::uint8_t protocol) {
    return protocol == protocol_tcp ? pool_tcp : protocol == protocol_udp ? pool_udp : pool_icmp;
}
// Where the translated port (or echo identifier) sits in the transport header.
std::uint32_t source_port_offset(std::uint8_t protocol) {
    return is_icmp(protocol) ? 4 : 0;
}
std::uint32_t destination_port_offset(std::uint8_t protocol) {
    return is_icmp(protocol) ? 4 : 2;
}
std::uint32_t checksum_offset(std::uint8_t protocol) {
    return protocol == protocol_tcp ? 16 : protocol == protocol_udp ? 6 : 2;
}

// ---- incremental checksums (RFC 1624) ----------------------------------------------------

// The one's complement sum does not depend on byte order (RFC 1071 §2(B)), so words are
// summed as they lie in memory and the checksum field is read and written the same way.
class ChecksumDelta {
  public:
    ChecksumDelta() = default;
    // A sum taken earlier (sum()), such as a flow's translation sums (NatTable::Entry).
    explicit ChecksumDelta(std::uint64_t sum) : sum_(sum) {}
    std::uint64_t sum() const { return sum_; }

    // `length` bytes (even, at an even offset from the start of what the checksum covers)
    // change from `before` to `after`: add ~m + m' for each word.
    void replace(const std::uint8_t* before, const std::uint8_t* after, std::uint32_t length) {
        for (std::uint32_t i = 0; i < length; i += 2) {
            sum_ += static_cast<std::uint16_t>(~load16(before + i));
            sum_ += load16(after + i);
        }
    }
    // An address (4 or 16 bytes) changes: the same, with the loop's length a constant.
    void replace_address(const std::uint8_t* before, const std::uint8_t* after, bool v6) {
        if (v6) {
            replace(before, after, 16);
        } else {
            replace(before, after, 4);
        }
    }
    void add(const ChecksumDelta& other) { sum_ += other.sum_; }

    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Eqn. 2 could produce 0xFFFF where a full
    // recomputation gives 0x0000; eqn. 3 cannot. fold_sum() takes 32 bits: the sums here
    // are a few dozen words, far below that.
    void apply(std::uint8_t* checksum) const {
        const std::uint64_t sum = static_cast<std::uint16_t>(~load16(checksum)) + sum_;
        store16(checksum, static_cast<std::uint16_t>(~fold_sum(static_cast<std::uint32_t>(sum))));
    }

  private:
    std::uint64_t sum_ = 0;
};

// A UDP checksum of zero means "none" (RFC 768) and stays zero; a computed zero is sent as
// 0xFFFF, its other one's complement form, so the receiver does not read it as "none".
void apply_udp(std::uint8_t* checksum, const ChecksumDelta& delta) {
    if (load16(checksum) == 0) {
        return;
    }
    delta.apply(checksum);
    if (load16(checksum) == 0) {
        store16(checksum, 0xFFFF);
    }
}

// The change of one end of a packet: an address (4 or 16 bytes) and a port, each from what it
// is to what it becomes.
struct EndpointChange {
    ChecksumDelta address;
    ChecksumDelta port;
};

EndpointChange endpoint_change(const std::uint8_t* address_before,
                               const std::uint8_t* address_after, bool v6,
                               const std::uint8_t* port_before, std::uint16_t port_after) {
    std::uint8_t port_bytes[2];
    store_be16(port_bytes, port_after);
    EndpointChange change;
    change.address.replace_address(address_before, address_after, v6);
    change.port.replace(port_before, port_bytes, 2);
    return change;
}

// Moves one end of a packet (address at `address_offset` from the IP header, port at
// `port_offset` from the transport header) to `address`:`port`, which changes the checksums by
// `change`, and fixes the IPv4 header checksum and, when the bytes hold it, the transport
// checksum. With ReportWritten, returns the change of every byte it wrote, which is what a
// checksum covering the whole packet (the ICMP error that quotes it) must absorb; the
// per-packet translations do not need it, and skip its bookkeeping (a fifth of this function
// in callgrind of exit_in/64/1000).
template <bool ReportWritten>
[[gnu::always_inline]] inline ChecksumDelta rewrite_endpoint(
    std::uint8_t* ip, const NatPacket& packet, std::uint32_t address_offset,
    const IpAddress& address, std::uint32_t port_offset, std::uint16_t port,
    const EndpointChange& change) {
    std::uint8_t* l4 = ip + packet.l4;
    const ChecksumDelta& address_delta = change.address;
    const ChecksumDelta& port_delta = change.port;
    ChecksumDelta written;
    if constexpr (ReportWritten) {
        written = address_delta;
        written.add(port_delta);
    }

    if (!packet.v6()) {
        std::uint8_t* header_checksum = ip + 10;
        std::uint8_t before[2] = {header_checksum[0], header_checksum[1]};
        address_delta.apply(header_checksum);
        if constexpr (ReportWritten) {
            written.replace(before, header_checksum, 2);
        }
    }
    std::uint32_t field = checksum_offset(packet.protocol);
    if (packet.l4 + field + 2 <= packet.end) {
        std::uint8_t* checksum = l4 + field;
        std::uint8_t before[2] = {checksum[0], checksum[1]};
        // TCP, UDP and ICMPv6 sum a pseudo header holding the addresses; ICMPv4 does not.
        ChecksumDelta delta = port_delta;
        if (packet.protocol != protocol_icmp) {
            delta.add(address_delta);
        }
        if (packet.protocol == protocol_udp) {
            apply_udp(checksum, delta);
        } else {
            delta.apply(checksum);
        }
        if constexpr (ReportWritten) {
            written.replace(before, checksum, 2);
        }
    }
    copy_address(ip + address_offset, address.bytes.data(), packet.v6());
    store_be16(l4 + port_offset, port);
    return written;
}

// rewrite_endpoint(), with the change summed from the packet's own bytes.
template <bool ReportWritten>
ChecksumDelta move_endpoint(std::uint8_t* ip, const NatPacket& packet, std::uint32_t address_offset,
                            const IpAddress& address, std::uint32_t port_offset,
                            std::uint16_t port) {
    const EndpointChange change = endpoint_change(ip + address_offset, address.bytes.data(),
                                                  packet.v6(), ip + packet.l4 + port_offset, port);
    return rewrite_endpoint<ReportWritten>(ip, packet, address_offset, address, port_offset, port,
                                           change);
}

// Moves one end of a datagram's later fragment, which carries no transport header: the address,
// and the IPv4 header checksum. (The transport checksum, in the first fragment, covers the
// whole datagram; the first fragment's translation already moved it.)
void move_address(std::uint8_t* ip, const NatPacket& packet, std::uint32_t address_offset,
                  const IpAddress& address) {
    if (!packet.v6()) {
        ChecksumDelta delta;
        delta.replace(ip + address_offset, address.bytes.data(), 4);
        delta.apply(ip + 10);
    }
    copy_address(ip + address_offset, address.bytes.data(), packet.v6());
}

// ---- parsing: every read is checked against the bytes the buffer holds ------------------

// A quoted packet (inside an ICMP error) is usually cut short: its length field describes the
// original, so only the bytes present count, and none beyond them is read.
NatResult parse_ipv4(const std::uint8_t* ip, std::uint32_t length, bool quoted, NatPacket& packet) {
    if (length < 20) {
        return NatResult::malformed;
    }
    std::uint32_t header = (ip[0] & 0x0F) * 4u;
    std::uint32_t total = load_be16(ip + 2);
    if (header < 20 || header > length || total < header || (!quoted && total > length)) {
        return NatResult::malformed;
    }
    packet.version = 4;
    packet.protocol = ip[9];
    packet.l4 = header;
    packet.end = std::min(total, length);
    const std::uint16_t fragment = load_be16(ip + 6);
    if ((fragment & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
        packet.identification = load_be16(ip + 4);
        if ((fragment & RTE_IPV4_HDR_OFFSET_MASK) != 0) {
            packet.fragment = NatPacket::Fragment::later;
            return NatResult::fragment;
        }
        packet.fragment = NatPacket::Fragment::first;
    }
    return NatResult::translated;
}

// Skips hop-by-hop and destination options and a first fragment's fragment header. A routing
// header changes which address the transport checksum covers, so it stays unsupported.
NatResult parse_ipv6(const std::uint8_t* ip, std::uint32_t length, bool quoted, NatPacket& packet) {
    if (length < 40) {
        return NatResult::malformed;
    }
    std::uint32_t payload = load_be16(ip + 4);
    std::uint32_t end = 40 + payload;
    if (!quoted && (payload == 0 || end > length)) {  // 0: a jumbogram, never on our links
        return NatResult::malformed;
    }
    end = std::min(end, length);
    std::uint8_t next = ip[6];
    std::uint32_t offset = 40;
    for (int headers = 0; headers < 4; ++headers) {
        if (next != 0 && next != 60 && next != 44) {
            break;
        }
        if (offset + 8 > end) {
            return NatResult::malformed;
        }
        if (next == 44) {
            const std::uint16_t fragment = load_be16(ip + offset + 2);
            packet.identification = static_cast<std::uint32_t>(load_be16(ip + offset + 4)) << 16 |
                                    load_be16(ip + offset + 6);
            // Offset 0 without "more fragments" is an atomic fragment (RFC 6946): whole.
            packet.fragment =
                (fragment & 1) != 0 ? NatPacket::Fragment::first : NatPacket::Fragment::none;
            if ((fragment & 0xFFF8) != 0) {
                packet.version = 6;
                packet.protocol = ip[offset];
                packet.l4 = offset + 8;
                packet.end = end;
                packet.fragment = NatPacket::Fragment::later;
                return NatResult::fragment;
            }
        }
        std::uint32_t size = next == 44 ? 8 : (ip[offset + 1] + 1u) * 8;
        next = ip[offset];
        offset += size;
    }
    if (offset > end) {
        return NatResult::malformed;
    }
    packet.version = 6;
    packet.protocol = next;
    packet.l4 = offset;
    packet.end = end;
    return NatResult::translated;
}

NatResult parse_ip(const std::uint8_t* ip, std::uint32_t length, bool quoted, NatPacket& packet) {
    if (length == 0) {
        return NatResult::malformed;
    }
    switch (ip[0] >> 4) {
        case 4:
            return parse_ipv4(ip, length, quoted, packet);
        case 6:
            return parse_ipv6(ip, length, quoted, packet);
        default:
            return NatResult::malformed;
    }
}

// Ports, TCP flags, ICMP type. A quote needs only the first 8 transport bytes (RFC 792
// promises no more): ports, the UDP checksum, the ICMP identifier.
NatResult parse_transport(const std::uint8_t* ip, bool quoted, NatPacket& packet) {
    const std::uint8_t* l4 = ip + packet.l4;
    std::uint32_t available = packet.end - packet.l4;
    bool icmp_of_family = packet.protocol == (packet.v6() ? protocol_icmpv6 : protocol_icmp);
    if (packet.protocol != protocol_tcp && packet.protocol != protocol_udp && !icmp_of_family) {
        return NatResult::unsupported_protocol;
    }
    if (available < 8) {
        return NatResult::malformed;
    }
    if (is_icmp(packet.protocol)) {
        packet.icmp_type = l4[0];
        packet.source_port = load_be16(l4 + 4);
        packet.destination_port = 0;
        return NatResult::translated;
    }
    packet.source_port = load_be16(l4);
    packet.destination_port = load_be16(l4 + 2);
    if (packet.protocol == protocol_tcp && !quoted) {
        // The data offset is byte 12: a segment of 8 to 12 bytes must not have it read.
        if (available < 20) {
            return NatResult::malformed;
        }
        const std::uint32_t header = (l4[12] >> 4) * 4u;
        if (header < 20 || header > available) {
            return NatResult::malformed;
        }
        packet.tcp_flags = l4[13];
    }
    return NatResult::translated;
}

// Any packet. It starts from an empty NatPacket: a burst parses each packet into a slot that a
// refused packet may have filled before, and nothing of that one (a first fragment's state,
// which would have its datagram's later fragments leave translated) may carry over.
[[gnu::noinline]] NatResult parse_any(const std::uint8_t* ip, std::uint32_t length, bool quoted,
                                      NatPacket& packet) {
    packet = NatPacket{};
    NatResult result = parse_ip(ip, length, quoted, packet);
    return result == NatResult::translated ? parse_transport(ip, quoted, packet) : result;
}

// The packet nearly every translation sees, a whole IPv4 TCP or UDP datagram without options,
// parsed inline to exactly what parse_any() makes of it; the rest goes to parse_any(). Out of
// line and general, the parse cost 64 instructions a packet in callgrind of exit_out/64/1000
// (session 25).
[[gnu::always_inline]] inline NatResult parse(const std::uint8_t* ip, std::uint32_t length,
                                              bool quoted, NatPacket& packet) {
    if (quoted || length < 28 || ip[0] != 0x45) {
        return parse_any(ip, length, quoted, packet);
    }
    const std::uint32_t total = load_be16(ip + 2);
    const std::uint8_t protocol = ip[9];
    const bool whole = (load_be16(ip + 6) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) == 0;
    if (!whole || total > length || total < 28) {
        return parse_any(ip, length, quoted, packet);
    }
    std::uint8_t tcp_flags = 0;
    if (protocol == protocol_tcp) {
        // As parse_transport(): 20 bytes of header at least, the data offset within the segment.
        if (total < 40) {
            return parse_any(ip, length, quoted, packet);
        }
        const std::uint32_t header = (ip[20 + 12] >> 4) * 4u;
        if (header < 20 || header > total - 20) {
            return parse_any(ip, length, quoted, packet);
        }
        tcp_flags = ip[20 + 13];
    } else if (protocol != protocol_udp) {
        return parse_any(ip, length, quoted, packet);
    }
    packet = NatPacket{};
    packet.version = 4;
    packet.protocol = protocol;
    packet.l4 = 20;
    packet.end = total;
    packet.source_port = load_be16(ip + 20);
    packet.destination_port = load_be16(ip + 22);
    packet.tcp_flags = tcp_flags;
    return NatResult::translated;
}

bool is_echo_request(const NatPacket& packet) {
    return packet.icmp_type == (packet.v6() ? icmpv6_echo_request : icmp_echo_request);
}
bool is_echo_reply(const NatPacket& packet) {
    return packet.icmp_type == (packet.v6() ? icmpv6_echo_reply : icmp_echo_reply);
}
// The errors that quote the packet they are about (RFC 792, RFC 4443 §3).
bool is_icmp_error(const NatPacket& packet) {
    if (packet.v6()) {
        return packet.icmp_type == icmpv6_unreachable ||
               packet.icmp_type == icmpv6_packet_too_big ||
               packet.icmp_type == icmpv6_time_exceeded ||
               packet.icmp_type == icmpv6_parameter_problem;
    }
    return packet.icmp_type == icmp_unreachable || packet.icmp_type == icmp_time_exceeded ||
           packet.icmp_type == icmp_parameter_problem;
}

// RFC 5382 in three states: FIN or RST closes; a packet that is not a SYN, after the other
// side has answered, completes the handshake; a fresh SYN reopens a closed tuple.
void follow_tcp(NatFlowRecord& record, std::uint8_t flags) {
    if (flags & (tcp_fin | tcp_rst)) {
        record.tcp_state = TcpState::closing;
    } else if (flags & tcp_syn) {
        if (record.tcp_state == TcpState::closing) {
            record.tcp_state = TcpState::opening;
        }
    } else if (record.tcp_state == TcpState::opening && record.packets_in > 0 &&
               record.packets_out > 0) {
        record.tcp_state = TcpState::established;
    }
}

template <typename T>
T* allocate_array(const char* what, std::size_t count, int socket) {
    void* memory = allocate_table_memory(what, sizeof(T) * count, socket);
    if (memory == nullptr) {
        throw std::runtime_error(std::string("nat: cannot allocate ") + what);
    }
    T* array = static_cast<T*>(memory);
    for (std::size_t i = 0; i < count; ++i) {
        new (&array[i]) T();
    }
    return array;
}

// What allocate_array<T>(·, count, ·) returned; nullptr is nothing.
template <typename T>
void free_array(T* array, std::size_t count) {
    free_table_memory(array, sizeof(T) * count);
}

// The 64-bit words of a port pool's "unused" bitmap: one bit per port of the range.
std::uint32_t bitmap_words(const PortRange& ports) {
    return (ports.size() + 63) / 64;
}

// The next port offset at or after `from` (wrapping) whose bit is set; the caller knows one is.
std::uint32_t next_unused(const std::uint64_t* bits, std::uint32_t words, std::uint32_t from) {
    std::uint32_t word = from / 64;
    std::uint64_t candidates = bits[word] & (~std::uint64_t{0} << (from % 64));
    for (std::uint32_t step = 0; step <= words; ++step) {
        if (candidates != 0) {
            return word * 64 + static_cast<std::uint32_t>(std::countr_zero(candidates));
        }
        word = word + 1 == words ? 0 : word + 1;
        candidates = bits[word];
    }
    return words * 64;
}

}  // namespace

const char* to_string(NatResult result) {
    switch (result) {
        case NatResult::translated:
            return "translated";
        case NatResult::no_flow:
            return "no_flow";
        case NatResult::table_full:
            return "table_full";
        case NatResult::ports_exhausted:
            return "ports_exhausted";
        case NatResult::unsupported_protocol:
            return "unsupported_protocol";
        case NatResult::fragment:
            return "fragment";
        case NatResult::malformed:
            return "malformed";
    }
    return "unknown";
}

// ---- port ranges ----------------------------------------------------------------------------

PortRange split_port_range(PortRange all, unsigned workers, unsigned worker) {
    std::uint32_t size = all.size();
    if (workers == 0 || worker >= workers || worker >= size) {
        return {1, 0};
    }
    std::uint32_t base = size / workers;
    std::uint32_t extra = size % workers;
    std::uint32_t first = all.first + worker * base + std::min<std::uint32_t>(worker, extra);
    std::uint32_t count = base + (worker < extra ? 1 : 0);
    return {static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(first + count - 1)};
}

unsigned owner_of_port(PortRange all, unsigned workers, std::uint16_t port) {
    if (workers == 0 || !all.contains(port)) {
        return workers;
    }
    std::uint32_t base = all.size() / workers;
    std::uint32_t extra = all.size() % workers;
    std::uint32_t offset = port - all.first;
    // The first `extra` slices hold base + 1 ports each, the rest base.
    std::uint32_t long_part = extra * (base + 1);
    if (offset < long_part) {
        return offset / (base + 1);
    }
    return extra + (offset - long_part) / base;
}

namespace {

// The quadruple a fragmented datagram's fragments share, as they arrive (before translation).
FragmentKey fragment_key(const std::uint8_t* ip, const NatPacket& packet,
                         FragmentDirection direction) {
    FragmentKey key;
    key.version = packet.version;
    key.protocol = packet.protocol;
    key.direction = direction;
    key.identification = packet.identification;
    copy_address(key.source.data(), ip + packet.source_offset(), packet.v6());
    copy_address(key.destination.data(), ip + packet.destination_offset(), packet.v6());
    return key;
}

std::optional<std::uint16_t> inbound_port_of(const std::uint8_t* ip, const NatPacket& packet) {
    if (!is_icmp(packet.protocol)) {
        return packet.destination_port;
    }
    if (is_echo_reply(packet)) {
        return packet.source_port;  // the identifier
    }
    if (!is_icmp_error(packet) || packet.l4 + icmp_error_header > packet.end) {
        return std::nullopt;
    }
    const std::uint32_t quote = packet.l4 + icmp_error_header;
    NatPacket quoted;
    if (parse(ip + quote, packet.end - quote, true, quoted) != NatResult::translated) {
        return std::nullopt;
    }
    return quoted.source_port;
}

}  // namespace

NatSteering nat_inbound_steering(const std::uint8_t* ip, std::uint32_t length) {
    NatSteering steering;
    NatPacket packet;
    const NatResult result = parse(ip, length, false, packet);
    if (result != NatResult::translated && result != NatResult::fragment) {
        return steering;
    }
    if (packet.fragment != NatPacket::Fragment::none) {
        steering.fragment = fragment_key(ip, packet, FragmentDirection::from_uplink);
    }
    if (result == NatResult::translated) {
        steering.port = inbound_port_of(ip, packet);
    }
    return steering;
}

// ---- the table: cold path -----------------------------------------------------------------

const NatOptions& NatTable::validated(const NatOptions& options) {
    if (options.capacity < 8 || options.capacity > (1u << 28)) {
        throw std::invalid_argument("nat: capacity must be 8 .. 2^28 flows");
    }
    if (options.ports.size() == 0) {
        throw std::invalid_argument("nat: empty port range");
    }
    if (options.fragment_slots == 0 || options.fragment_slots > (1u << 20) ||
        options.fragment_lifetime_seconds == 0) {
        throw std::invalid_argument("nat: fragment slots must be 1 .. 2^20, lifetime at least 1 s");
    }
    if (options.uplink_v4.is_v6 || !options.uplink_v6.is_v6) {
        throw std::invalid_argument("nat: uplink addresses of the wrong family");
    }
    if (options.ticks_per_second == 0 || options.max_port_probes == 0 ||
        options.pending_records == 0) {
        throw std::invalid_argument("nat: ticks_per_second, probes and pending must be > 0");
    }
    return options;
}

NatTable::NatTable(const std::string& name_prefix, const NatOptions& options)
    : options_(validated(options)),
      fragments_(options.fragment_slots,
                 std::uint64_t{options.fragment_lifetime_seconds} * options.ticks_per_second),
      forward_(name_prefix + "_f", options.capacity, options.socket),
      reverse_(name_prefix + "_r", options.capacity, options.socket) {
    const NatTimeouts& t = options.timeouts;
    std::uint64_t seconds[4] = {t.tcp_established, t.tcp_transitory, t.udp, t.icmp};
    for (int i = 0; i < 4; ++i) {
        timeout_ticks_[i] = seconds[i] * options.ticks_per_second;
    }
    const std::uint64_t sweep_period = *std::min_element(timeout_ticks_, timeout_ticks_ + 4) / 4;
    ticks_per_swept_entry_ = std::max<std::uint64_t>(1, sweep_period / options.capacity);
    try {
        entries_ = allocate_array<Entry>("nat_entries", options.capacity, options.socket);
        free_ = allocate_array<std::uint32_t>("nat_free", options.capacity, options.socket);
        pending_ =
            allocate_array<NatFlowRecord>("nat_pending", options.pending_records, options.socket);
        std::uint32_t size = options.ports.size();
        const std::uint32_t words = bitmap_words(options.ports);
        for (PortPool& pool : pools_) {
            pool.users = allocate_array<std::uint32_t>("nat_port_users", size, options.socket);
            pool.unused = allocate_array<std::uint64_t>("nat_port_bits", words, options.socket);
            for (std::uint32_t offset = 0; offset < size; ++offset) {
                pool.unused[offset / 64] |= std::uint64_t{1} << (offset % 64);
            }
            pool.unused_count = size;
        }
    } catch (...) {
        release();
        throw;
    }
    // Hand out entry 0 first: the stack pops from its end.
    for (std::uint32_t i = 0; i < options.capacity; ++i) {
        free_[i] = options.capacity - 1 - i;
    }
    free_count_ = options.capacity;
}

NatTable::~NatTable() {
    release();
}

void NatTable::release() {
    // Every element type is trivially destructible: freeing the memory ends their lifetime.
    free_array(entries_, options_.capacity);
    free_array(free_, options_.capacity);
    free_array(pending_, options_.pending_records);
    const std::uint32_t size = options_.ports.size();
    for (PortPool& pool : pools_) {
        free_array(pool.users, size);
        free_array(pool.unused, bitmap_words(options_.ports));
    }
}

// ---- flows ----------------------------------------------------------------------------------

NatTable::FlowKey NatTable::forward_key(const NatFlowRecord& record) {
    FlowKey key;
    write_key(key, record.inner_address.is_v6 ? 6 : 4, record.protocol, record.inner_port,
              record.remote_port, record.inner_address.bytes.data(),
              record.remote_address.bytes.data());
    return key;
}

// The uplink address is the same for every flow of a family, so it is not part of the key.
NatTable::FlowKey NatTable::reverse_key(const NatFlowRecord& record) {
    FlowKey key;
    write_key(key, record.inner_address.is_v6 ? 6 : 4, record.protocol, record.translated_port,
              record.remote_port, nullptr, record.remote_address.bytes.data());
    return key;
}

bool NatTable::holds(std::uint32_t index, KeyKind kind, const FlowKey& key) const {
    const NatFlowRecord& record = entries_[index].record;
    const std::uint16_t local_port =
        kind == KeyKind::forward ? record.inner_port : record.translated_port;
    if (record.protocol != key.protocol || local_port != key.local_port ||
        record.remote_port != key.remote_port ||
        record.remote_address.is_v6 != (key.version == 6) ||
        !same_16_bytes(record.remote_address.bytes.data(), key.remote.data())) {
        return false;
    }
    // The reverse key leaves the local address out: it is the uplink's, the same for all.
    return kind == KeyKind::reverse ||
           same_16_bytes(record.inner_address.bytes.data(), key.local.data());
}

std::int32_t NatTable::lookup(KeyKind kind, const FlowKey& key, std::uint64_t hash) const {
    return index(kind).find(hash, [&](std::uint32_t entry) { return holds(entry, kind, key); });
}

std::uint64_t NatTable::timeout(const NatFlowRecord& record) const {
    switch (record.protocol) {
        case protocol_tcp:
            return record.tcp_state == TcpState::established ? timeout_ticks_[0]
                                                             : timeout_ticks_[1];
        case protocol_udp:
            return timeout_ticks_[2];
        default:
            return timeout_ticks_[3];
    }
}

// Idle for its whole timeout: gone, whether or not expire() has swept it yet.
bool NatTable::expired(const Entry& entry, std::uint64_t now) const {
    const NatFlowRecord& record = entry.record;
    return now >= record.last_seen && now - record.last_seen >= timeout(record);
}

// Ports are searched from a cursor that moves on with every allocation, so a port just freed
// is not handed out again at once (stray packets of the old flow would reach the new one).
// While some port carries no flow at all, a new flow gets one of those; only when every port
// is in use does a flow share a port, with flows to other remote endpoints (the reverse key
// includes the remote endpoint, so sharing is unambiguous).
bool NatTable::find_port(unsigned pool_index, FlowKey& reverse) const {
    const PortPool& pool = pools_[pool_index];
    std::uint32_t size = options_.ports.size();
    if (pool.unused_count > 0) {
        std::uint32_t offset = next_unused(pool.unused, bitmap_words(options_.ports), pool.cursor);
        reverse.local_port = static_cast<std::uint16_t>(options_.ports.first + offset);
        return true;
    }
    std::uint32_t probes = std::min(options_.max_port_probes, size);
    for (std::uint32_t i = 0; i < probes; ++i) {
        std::uint32_t offset = (pool.cursor + i) % size;
        reverse.local_port = static_cast<std::uint16_t>(options_.ports.first + offset);
        if (lookup(KeyKind::reverse, reverse) < 0) {
            return true;
        }
    }
    return false;
}

void NatTable::take_port(unsigned pool_index, std::uint16_t port) {
    PortPool& pool = pools_[pool_index];
    std::uint32_t offset = port - options_.ports.first;
    if (pool.users[offset]++ == 0) {
        pool.unused[offset / 64] &= ~(std::uint64_t{1} << (offset % 64));
        --pool.unused_count;
    }
    pool.cursor = offset + 1 == options_.ports.size() ? 0 : offset + 1;
}

void NatTable::release_port(unsigned pool_index, std::uint16_t port) {
    PortPool& pool = pools_[pool_index];
    std::uint32_t offset = port - options_.ports.first;
    if (--pool.users[offset] == 0) {
        pool.unused[offset / 64] |= std::uint64_t{1} << (offset % 64);
        ++pool.unused_count;
    }
}

NatResult NatTable::create(const FlowKey& forward, std::uint64_t forward_hash, PeerId peer,
                           std::uint64_t now, std::uint32_t& index) {
    if (free_count_ == 0) {
        return NatResult::table_full;
    }
    FlowKey reverse;  // its port is find_port()'s to choose
    write_key(reverse, forward.version, forward.protocol, 0, forward.remote_port, nullptr,
              forward.remote.data());
    unsigned pool = pool_of(forward.protocol);
    if (!find_port(pool, reverse)) {
        return NatResult::ports_exhausted;
    }
    index = free_[free_count_ - 1];
    // Both keys or neither: a half-inserted flow would translate one way only. (Neither
    // index can be full while an entry is free: each has two slots per entry.)
    if (!forward_.insert(forward_hash, index)) {
        return NatResult::table_full;
    }
    if (!reverse_.insert(hasher_(&reverse), index)) {
        forward_.erase(forward_hash, index);
        return NatResult::table_full;
    }
    --free_count_;
    take_port(pool, reverse.local_port);

    Entry& entry = entries_[index];
    entry.live = true;
    NatFlowRecord& record = entry.record;
    record = NatFlowRecord{};
    record.peer = peer;
    record.protocol = forward.protocol;
    record.inner_address.is_v6 = record.remote_address.is_v6 = forward.version == 6;
    record.inner_address.bytes = forward.local;
    record.remote_address.bytes = forward.remote;
    record.inner_port = forward.local_port;
    record.remote_port = forward.remote_port;
    record.translated_port = reverse.local_port;
    record.created = record.last_seen = now;
    sum_translations(entry);
    ++counters_.created;
    ++counters_.active;
    return NatResult::translated;
}

void NatTable::sum_translations(Entry& entry) const {
    const NatFlowRecord& record = entry.record;
    const bool v6 = record.inner_address.is_v6;
    const std::uint8_t* inner = record.inner_address.bytes.data();
    const std::uint8_t* outer = uplink(v6).bytes.data();
    std::uint8_t inner_port[2], translated_port[2];
    store_be16(inner_port, record.inner_port);
    store_be16(translated_port, record.translated_port);
    const EndpointChange outbound =
        endpoint_change(inner, outer, v6, inner_port, record.translated_port);
    const EndpointChange inbound =
        endpoint_change(outer, inner, v6, translated_port, record.inner_port);
    entry.outbound_address_sum = static_cast<std::uint32_t>(outbound.address.sum());
    entry.outbound_port_sum = static_cast<std::uint32_t>(outbound.port.sum());
    entry.inbound_address_sum = static_cast<std::uint32_t>(inbound.address.sum());
    entry.inbound_port_sum = static_cast<std::uint32_t>(inbound.port.sum());
}

void NatTable::push_pending(const NatFlowRecord& record) {
    if (pending_count_ == options_.pending_records) {
        ++counters_.records_lost;
        return;
    }
    pending_[(pending_head_ + pending_count_) % options_.pending_records] = record;
    ++pending_count_;
}

// An expired flow whose tuple comes back (or whose inner address now belongs to another
// peer) ends, and a new one starts in the same entry: same keys, same port, fresh counters.
void NatTable::restart(Entry& entry, PeerId peer, std::uint64_t now) {
    push_pending(entry.record);
    ++counters_.expired;
    ++counters_.created;
    NatFlowRecord& record = entry.record;
    record.peer = peer;
    record.tcp_state = TcpState::opening;
    record.created = record.last_seen = now;
    record.packets_out = record.bytes_out = record.packets_in = record.bytes_in = 0;
}

void NatTable::remove(std::uint32_t index) {
    Entry& entry = entries_[index];
    const FlowKey forward = forward_key(entry.record);
    const FlowKey reverse = reverse_key(entry.record);
    forward_.erase(hasher_(&forward), index);
    reverse_.erase(hasher_(&reverse), index);
    release_port(pool_of(entry.record.protocol), entry.record.translated_port);
    entry.live = false;
    free_[free_count_++] = index;
    --counters_.active;
}

unsigned NatTable::expire(std::uint64_t now, std::uint32_t budget, std::span<NatFlowRecord> ended) {
    const bool report = !ended.empty();
    unsigned written = 0;
    while (pending_count_ > 0 && (!report || written < ended.size())) {
        if (report) {
            ended[written++] = pending_[pending_head_];
        }
        pending_head_ = (pending_head_ + 1) % options_.pending_records;
        --pending_count_;
    }
    for (std::uint32_t visited = 0; visited < budget; ++visited) {
        if (report && written == ended.size()) {
            break;
        }
        std::uint32_t index = sweep_cursor_;
        sweep_cursor_ = sweep_cursor_ + 1 == options_.capacity ? 0 : sweep_cursor_ + 1;
        const Entry& entry = entries_[index];
        if (!entry.live || !expired(entry, now)) {
            continue;
        }
        if (report) {
            ended[written++] = entry.record;
        }
        remove(index);
        ++counters_.expired;
    }
    return written;
}

std::uint32_t NatTable::sweep_due(std::uint64_t now, std::uint32_t most) {
    if (free_count_ < options_.capacity / 8) {
        swept_until_ = now;
        return most;
    }
    if (now <= swept_until_) {
        return 0;
    }
    const std::uint64_t due = (now - swept_until_) / ticks_per_swept_entry_;
    if (due >= most) {
        swept_until_ = now;  // more than one call's worth behind (an idle spell): start afresh
        return most;
    }
    swept_until_ += due * ticks_per_swept_entry_;  // the remainder counts toward the next call
    return static_cast<std::uint32_t>(due);
}

// ---- the table: hot path ------------------------------------------------------------------

// Parses and checks a peer's packet; translated means "go on to the flow lookup".
[[gnu::always_inline]] inline NatResult NatTable::check_outbound(const std::uint8_t* ip,
                                                                 std::uint32_t length,
                                                                 NatPacket& packet) const {
    NatResult result = parse(ip, length, false, packet);
    if (result != NatResult::translated) {
        return result;
    }
    if (is_zero(uplink(packet.v6())) || (is_icmp(packet.protocol) && !is_echo_request(packet))) {
        return NatResult::unsupported_protocol;
    }
    return NatResult::translated;
}

// The key is written in the three pieces FlowHasher loads (bytes 0-15, 16-31, 32-39), each
// one store. Assembled field by field, a key is read back (copied, hashed) in words that span
// several smaller stores, and a load the store buffer cannot forward from one store waits
// until they have all reached the cache: about half of translate_outbound_burst's samples in
// a profile of exit_out/1420/1000 (session 22).
void NatTable::write_key(FlowKey& key, std::uint8_t version, std::uint8_t protocol,
                         std::uint16_t local_port, std::uint16_t remote_port,
                         const std::uint8_t* local, const std::uint8_t* remote) {
    static_assert(std::endian::native == std::endian::little, "the header word's byte order");
    static_assert(offsetof(FlowKey, local_port) == 2 && offsetof(FlowKey, remote_port) == 4 &&
                  offsetof(FlowKey, zero) == 6 && offsetof(FlowKey, local) == 8 &&
                  offsetof(FlowKey, remote) == 24);
    const std::uint64_t header = std::uint64_t{version} | std::uint64_t{protocol} << 8 |
                                 std::uint64_t{local_port} << 16 | std::uint64_t{remote_port} << 32;
    const bool v6 = version == 6;
    auto address = [v6](const std::uint8_t* from) {
        if (v6) {
            return _mm_loadu_si128(reinterpret_cast<const __m128i*>(from));
        }
        std::uint32_t word;
        std::memcpy(&word, from, 4);
        return _mm_cvtsi32_si128(static_cast<int>(word));
    };
    const __m128i local_bytes = local != nullptr ? address(local) : _mm_setzero_si128();
    const __m128i remote_bytes = address(remote);
    auto* out = reinterpret_cast<std::uint8_t*>(&key);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(out),
        _mm_unpacklo_epi64(_mm_cvtsi64_si128(static_cast<long long>(header)), local_bytes));
    // The local address's high half, then the remote's low half.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16),
                     _mm_castpd_si128(_mm_shuffle_pd(_mm_castsi128_pd(local_bytes),
                                                     _mm_castsi128_pd(remote_bytes), 0b01)));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 32),
                     _mm_unpackhi_epi64(remote_bytes, remote_bytes));
}

void NatTable::outbound_key(const std::uint8_t* ip, const NatPacket& packet, FlowKey& key) {
    write_key(key, packet.version, packet.protocol, packet.source_port, packet.destination_port,
              ip + packet.source_offset(), ip + packet.destination_offset());
}

NatOutcome NatTable::translate_outbound(std::uint8_t* ip, std::uint32_t length, PeerId peer,
                                        std::uint64_t now) {
    NatPacket packet;
    NatResult result = check_outbound(ip, length, packet);
    if (result == NatResult::fragment) {
        return outbound_fragment(ip, packet, peer, now);
    }
    if (result != NatResult::translated) {
        return {result};
    }
    FlowKey key;
    outbound_key(ip, packet, key);
    const std::uint64_t hash = hasher_(&key);
    return outbound(ip, packet, key, hash, lookup(KeyKind::forward, key, hash), peer, now);
}

// `found`: the flow's index, or -1 when the key is not in the table. Inline in the burst loop:
// called, it cost 30 instructions a packet in passing seven arguments and a 16-byte result.
[[gnu::always_inline]] inline NatOutcome NatTable::outbound(std::uint8_t* ip,
                                                            const NatPacket& packet,
                                                            const FlowKey& key, std::uint64_t hash,
                                                            std::int32_t found, PeerId peer,
                                                            std::uint64_t now) {
    std::uint32_t flow;
    bool created = false;
    if (found >= 0) {
        flow = static_cast<std::uint32_t>(found);
        Entry& entry = entries_[flow];
        if (expired(entry, now) || entry.record.peer != peer) {
            restart(entry, peer, now);
            created = true;
        }
    } else {
        NatResult result = create(key, hash, peer, now, flow);
        if (result != NatResult::translated) {
            ++counters_.refused;
            return {result};
        }
        created = true;
    }
    if (packet.fragment == NatPacket::Fragment::first) [[unlikely]] {
        remember_first_fragment(ip, packet, FragmentDirection::to_uplink, flow, now);
    }
    Entry& entry = entries_[flow];
    NatFlowRecord& record = entry.record;
    rewrite_endpoint<false>(
        ip, packet, packet.source_offset(), uplink(packet.v6()),
        source_port_offset(packet.protocol), record.translated_port,
        {ChecksumDelta(entry.outbound_address_sum), ChecksumDelta(entry.outbound_port_sum)});
    ++record.packets_out;
    record.bytes_out += packet.end;
    record.last_seen = now;
    if (packet.protocol == protocol_tcp) {
        follow_tcp(record, packet.tcp_flags);
    }
    return NatOutcome::translated(created, record.peer, flow);
}

// Parses and checks a packet from the internet; translated means "go on to the lookup",
// `error` says it is an ICMP error (looked up through its quote instead). Inline in the
// burst loop, as check_outbound() is.
[[gnu::always_inline]] inline NatResult NatTable::check_inbound(const std::uint8_t* ip,
                                                                std::uint32_t length,
                                                                NatPacket& packet,
                                                                bool& error) const {
    NatResult result = parse(ip, length, false, packet);
    if (result != NatResult::translated) {
        return result;
    }
    const IpAddress& address = uplink(packet.v6());
    if (is_zero(address)) {
        return NatResult::unsupported_protocol;
    }
    if (!same_address(ip + packet.destination_offset(), address, packet.address_length())) {
        return NatResult::no_flow;
    }
    error = is_icmp(packet.protocol) && is_icmp_error(packet);
    if (is_icmp(packet.protocol) && !error && !is_echo_reply(packet)) {
        return NatResult::unsupported_protocol;
    }
    return NatResult::translated;
}

void NatTable::inbound_key(const std::uint8_t* ip, const NatPacket& packet, FlowKey& key) {
    // An echo reply carries our identifier; TCP and UDP our port as destination.
    const bool icmp = is_icmp(packet.protocol);
    write_key(key, packet.version, packet.protocol,
              icmp ? packet.source_port : packet.destination_port,
              icmp ? std::uint16_t{0} : packet.source_port, nullptr, ip + packet.source_offset());
}

NatOutcome NatTable::translate_inbound(std::uint8_t* ip, std::uint32_t length, std::uint64_t now) {
    NatPacket packet;
    bool error = false;
    NatResult result = check_inbound(ip, length, packet, error);
    if (result == NatResult::fragment) {
        return inbound_fragment(ip, packet, now);
    }
    if (result != NatResult::translated) {
        return {result};
    }
    if (error) {
        return inbound_error(ip, packet, now);
    }
    FlowKey key;
    inbound_key(ip, packet, key);
    return inbound(ip, packet, lookup(KeyKind::reverse, key), now);
}

bool NatTable::holds_inbound_flow(const std::uint8_t* ip, std::uint32_t length, std::uint64_t now) {
    NatPacket packet;
    bool error = false;
    const NatResult result = check_inbound(ip, length, packet, error);
    if (result == NatResult::fragment) {
        return inbound_fragment_flow(ip, packet, now) != nullptr;
    }
    if (result != NatResult::translated || error) {
        return false;
    }
    FlowKey key;
    inbound_key(ip, packet, key);
    const std::int32_t found = lookup(KeyKind::reverse, key);
    return found >= 0 && !expired(entries_[found], now);
}

// ---- later fragments: translated as their datagram's first fragment was -------------------

// Out of line: the per-packet translations stay small enough to inline, and fragments are rare.
[[gnu::noinline]] void NatTable::remember_first_fragment(const std::uint8_t* ip,
                                                         const NatPacket& packet,
                                                         FragmentDirection direction,
                                                         std::uint32_t flow, std::uint64_t now) {
    fragments_.remember(fragment_key(ip, packet, direction), flow, now);
}

NatTable::Entry* NatTable::fragment_flow(const FragmentKey& key, const NatPacket& packet,
                                         std::uint64_t now) {
    const std::optional<std::uint32_t> flow = fragments_.find(key, now);
    if (!flow) {
        return nullptr;
    }
    Entry& entry = entries_[*flow];
    // The flow may have ended, and its entry taken by another, since the first fragment.
    if (!entry.live || expired(entry, now) || entry.record.protocol != packet.protocol ||
        entry.record.remote_address.is_v6 != packet.v6()) {
        return nullptr;
    }
    return &entry;
}

// A later fragment from the uplink belongs to its first fragment's flow when that flow still
// talks to the remote end the fragment comes from.
NatTable::Entry* NatTable::inbound_fragment_flow(const std::uint8_t* ip, const NatPacket& packet,
                                                 std::uint64_t now) {
    const FragmentKey key = fragment_key(ip, packet, FragmentDirection::from_uplink);
    Entry* entry = fragment_flow(key, packet, now);
    return entry != nullptr && entry->record.remote_address.bytes == key.source ? entry : nullptr;
}

NatOutcome NatTable::outbound_fragment(std::uint8_t* ip, const NatPacket& packet, PeerId peer,
                                       std::uint64_t now) {
    const FragmentKey key = fragment_key(ip, packet, FragmentDirection::to_uplink);
    Entry* entry = fragment_flow(key, packet, now);
    if (entry == nullptr || entry->record.peer != peer ||
        entry->record.inner_address.bytes != key.source ||
        entry->record.remote_address.bytes != key.destination) {
        return {NatResult::fragment};
    }
    move_address(ip, packet, packet.source_offset(), uplink(packet.v6()));
    return fragment_translated(*entry, true, packet.end, now);
}

NatOutcome NatTable::inbound_fragment(std::uint8_t* ip, const NatPacket& packet,
                                      std::uint64_t now) {
    const IpAddress& address = uplink(packet.v6());
    if (is_zero(address) ||
        !same_address(ip + packet.destination_offset(), address, packet.address_length())) {
        return {NatResult::no_flow};
    }
    Entry* entry = inbound_fragment_flow(ip, packet, now);
    if (entry == nullptr) {
        return {NatResult::fragment};
    }
    move_address(ip, packet, packet.destination_offset(), entry->record.inner_address);
    return fragment_translated(*entry, false, packet.end, now);
}

// A later fragment counts on its flow as the flow's other packets do, and keeps it alive.
NatOutcome NatTable::fragment_translated(Entry& entry, bool outbound, std::uint32_t bytes,
                                         std::uint64_t now) {
    NatFlowRecord& record = entry.record;
    ++(outbound ? record.packets_out : record.packets_in);
    (outbound ? record.bytes_out : record.bytes_in) += bytes;
    record.last_seen = now;
    ++counters_.fragments;
    return NatOutcome::translated(false, record.peer,
                                  static_cast<std::uint32_t>(&entry - entries_));
}

// Inline in the burst loop, as outbound() is: called, it passes a packet, an index and a
// 16-byte result through memory for every packet.
[[gnu::always_inline]] inline NatOutcome NatTable::inbound(std::uint8_t* ip,
                                                           const NatPacket& packet,
                                                           std::int32_t found, std::uint64_t now) {
    if (found < 0 || expired(entries_[found], now)) {
        return {NatResult::no_flow};
    }
    if (packet.fragment == NatPacket::Fragment::first) [[unlikely]] {
        remember_first_fragment(ip, packet, FragmentDirection::from_uplink,
                                static_cast<std::uint32_t>(found), now);
    }
    Entry& entry = entries_[found];
    NatFlowRecord& record = entry.record;
    rewrite_endpoint<false>(
        ip, packet, packet.destination_offset(), record.inner_address,
        destination_port_offset(packet.protocol), record.inner_port,
        {ChecksumDelta(entry.inbound_address_sum), ChecksumDelta(entry.inbound_port_sum)});
    ++record.packets_in;
    record.bytes_in += packet.end;
    record.last_seen = now;
    if (packet.protocol == protocol_tcp) {
        follow_tcp(record, packet.tcp_flags);
    }
    return NatOutcome::translated(false, record.peer, static_cast<std::uint32_t>(found));
}

// ---- bursts: one pipelined look-up for up to 32 packets, then the translations ------------

// Three passes over the burst's keys: hash each and start its home bucket; read each bucket's
// first candidate and start its entry; compare. Each line has the rest of the burst's work in
// that pass to arrive in. A pipeline a few keys deep (buckets read 6 keys after their hash,
// compared 14 after) had kept fewer loads in flight, for fear of full miss buffers dropping
// prefetches (an Intel host, session 11), but on a host whose memory answers in 300 ns it
// waited for most lines: with a million flows, whole passes took exit_out/64 from 3.16 to
// 4.45 Mpps and exit_out/1420 from 1.08 to 1.41 (bench/RESULTS.md, session 23). The passes
// stay whole and tight: hashing in the loop that parses and builds the keys, or comparing in
// the loop that translates, saved a few instructions and lost a quarter of the million-flow
// rate (exit_in/64/1000000 6.06 -> 4.48 Mpps, session 24).
void NatTable::lookup_bulk(KeyKind kind, const FlowKey* keys, unsigned count, std::int32_t* found,
                           std::uint64_t* hashes) const {
    assert(count <= nat_burst_max);
    const FlowIndex& flows = index(kind);
    for (unsigned i = 0; i < count; ++i) {
        hashes[i] = hasher_(&keys[i]);
        flows.prefetch(hashes[i]);
    }
    std::int32_t candidates[nat_burst_max];
    for (unsigned i = 0; i < count; ++i) {
        candidates[i] = flows.first_candidate(hashes[i]);
        if (candidates[i] >= 0) {
            const auto* entry = reinterpret_cast<const std::uint8_t*>(&entries_[candidates[i]]);
            rte_prefetch0(entry);
            rte_prefetch0(entry + RTE_CACHE_LINE_SIZE);
        }
    }
    // The first candidate is nearly always the flow: compared first, without the bucket's tags
    // matched again (14 instructions a packet); find() has the rest (no candidate, a tag that
    // collided, a flow stored past its home bucket).
    for (unsigned i = 0; i < count; ++i) {
        const std::int32_t candidate = candidates[i];
        found[i] = candidate >= 0 && holds(static_cast<std::uint32_t>(candidate), kind, keys[i])
                       ? candidate
                       : flows.find(hashes[i], [&](std::uint32_t entry) {
                             return holds(entry, kind, keys[i]);
                         });
    }
}

void NatTable::translate_outbound_burst(std::uint8_t* const* ips, const std::uint32_t* lengths,
                                        const PeerId* peers, unsigned count, std::uint64_t now,
                                        NatOutcome* outcomes) {
    BurstScratch<NatPacket, nat_burst_max> packet_slots, fragment_packet_slots;
    BurstScratch<FlowKey, nat_burst_max> key_slots;
    NatPacket* const packets = packet_slots.data();
    FlowKey* const keys = key_slots.data();
    unsigned which[nat_burst_max];
    std::int32_t found[nat_burst_max];
    std::uint64_t hashes[nat_burst_max];
    // Later fragments, translated after the burst's other packets (their first fragments).
    unsigned fragments[nat_burst_max];
    NatPacket* const fragment_packets = fragment_packet_slots.data();
    for (unsigned start = 0; start < count; start += nat_burst_max) {
        unsigned end = std::min(count, start + nat_burst_max);
        unsigned pending = 0;
        unsigned later_fragments = 0;
        for (unsigned i = start; i < end; ++i) {
            outcomes[i] = {check_outbound(ips[i], lengths[i], packets[pending])};
            if (outcomes[i].result == NatResult::translated) {
                outbound_key(ips[i], packets[pending], keys[pending]);
                which[pending++] = i;
            } else if (outcomes[i].result == NatResult::fragment) {
                // After their first fragments, below.
                fragment_packets[later_fragments] = packets[pending];
                fragments[later_fragments++] = i;
            }
        }
        lookup_bulk(KeyKind::forward, keys, pending, found, hashes);
        for (unsigned j = 0; j < pending; ++j) {
            unsigned i = which[j];
            // A miss may have been created by an earlier packet of this burst: look again.
            std::int32_t index =
                found[j] >= 0 ? found[j] : lookup(KeyKind::forward, keys[j], hashes[j]);
            outcomes[i] = outbound(ips[i], packets[j], keys[j], hashes[j], index, peers[i], now);
        }
        for (unsigned f = 0; f < later_fragments; ++f) {
            const unsigned i = fragments[f];
            outcomes[i] = outbound_fragment(ips[i], fragment_packets[f], peers[i], now);
        }
    }
}

void NatTable::translate_inbound_burst(std::uint8_t* const* ips, const std::uint32_t* lengths,
                                       unsigned count, std::uint64_t now, NatOutcome* outcomes) {
    BurstScratch<NatPacket, nat_burst_max> packet_slots, fragment_packet_slots;
    BurstScratch<FlowKey, nat_burst_max> key_slots;
    NatPacket* const packets = packet_slots.data();
    FlowKey* const keys = key_slots.data();
    unsigned which[nat_burst_max];
    std::int32_t found[nat_burst_max];
    std::uint64_t hashes[nat_burst_max];
    // Later fragments, translated after the burst's other packets (their first fragments).
    unsigned fragments[nat_burst_max];
    NatPacket* const fragment_packets = fragment_packet_slots.data();
    for (unsigned start = 0; start < count; start += nat_burst_max) {
        unsigned end = std::min(count, start + nat_burst_max);
        unsigned pending = 0;
        unsigned later_fragments = 0;
        for (unsigned i = start; i < end; ++i) {
            bool error = false;
            outcomes[i] = {check_inbound(ips[i], lengths[i], packets[pending], error)};
            if (outcomes[i].result == NatResult::fragment) {
                // After their first fragments, below.
                fragment_packets[later_fragments] = packets[pending];
                fragments[later_fragments++] = i;
                continue;
            }
            if (outcomes[i].result != NatResult::translated) {
                continue;
            }
            if (error) {  // rare: translated on the spot, through its quote
                outcomes[i] = inbound_error(ips[i], packets[pending], now);
                continue;
            }
            inbound_key(ips[i], packets[pending], keys[pending]);
            which[pending++] = i;
        }
        // Inbound packets never add or remove keys, so every hit and miss stays true.
        lookup_bulk(KeyKind::reverse, keys, pending, found, hashes);
        for (unsigned j = 0; j < pending; ++j) {
            outcomes[which[j]] = inbound(ips[which[j]], packets[j], found[j], now);
        }
        for (unsigned f = 0; f < later_fragments; ++f) {
            const unsigned i = fragments[f];
            outcomes[i] = inbound_fragment(ips[i], fragment_packets[f], now);
        }
    }
}

// An ICMP error quotes the packet it is about: one of ours as it left, from the uplink address
// and translated port. Translating it back means the quote's source, the quote's checksums,
// the outer destination, and the outer ICMP checksum, which covers all of the quote (and,
// for ICMPv6, the outer addresses). The error is counted but does not keep the flow alive.
NatOutcome NatTable::inbound_error(std::uint8_t* ip, const NatPacket& outer, std::uint64_t now) {
    std::uint32_t quote_offset = outer.l4 + icmp_error_header;
    if (quote_offset > outer.end) {
        return {NatResult::malformed};
    }
    std::uint8_t* quote = ip + quote_offset;
    NatPacket quoted;
    NatResult result = parse(quote, outer.end - quote_offset, true, quoted);
    if (result != NatResult::translated) {
        return {result};
    }
    if (quoted.version != outer.version) {
        return {NatResult::malformed};
    }
    if (is_icmp(quoted.protocol) && !is_echo_request(quoted)) {
        return {NatResult::unsupported_protocol};
    }
    const IpAddress& address = uplink(outer.v6());
    if (!same_address(quote + quoted.source_offset(), address, quoted.address_length())) {
        return {NatResult::no_flow};
    }
    FlowKey key;
    write_key(key, quoted.version, quoted.protocol, quoted.source_port, quoted.destination_port,
              nullptr, quote + quoted.destination_offset());
    std::int32_t found = lookup(KeyKind::reverse, key);
    if (found < 0 || expired(entries_[found], now)) {
        return {NatResult::no_flow};
    }
    NatFlowRecord& record = entries_[found].record;

    ChecksumDelta icmp_delta =
        move_endpoint<true>(quote, quoted, quoted.source_offset(), record.inner_address,
                            source_port_offset(quoted.protocol), record.inner_port);
    std::uint8_t* destination = ip + outer.destination_offset();
    ChecksumDelta destination_delta;
    destination_delta.replace_address(destination, record.inner_address.bytes.data(), outer.v6());
    if (outer.v6()) {
        icmp_delta.add(destination_delta);  // ICMPv6's pseudo header
    } else {
        destination_delta.apply(ip + 10);
    }
    icmp_delta.apply(ip + outer.l4 + 2);
    copy_address(destination, record.inner_address.bytes.data(), outer.v6());
    ++record.packets_in;
    record.bytes_in += outer.end;
    return NatOutcome::translated(false, record.peer, static_cast<std::uint32_t>(found));
}

// ---- MSS clamping -----------------------------------------------------------------------------

bool clamp_tcp_segment_mss(std::uint8_t* ip, std::uint32_t length, std::uint16_t max_mss) {
    NatPacket packet;
    if (parse(ip, length, false, packet) != NatResult::translated ||
        packet.protocol != protocol_tcp || !(packet.tcp_flags & tcp_syn)) {
        return false;
    }
    std::uint8_t* tcp = ip + packet.l4;
    std::uint32_t header = (tcp[12] >> 4) * 4u;
    std::uint32_t offset = 20;
    while (offset < header) {
        std::uint8_t kind = tcp[offset];
        if (kind == 0) {  // end of options
            return false;
        }
        if (kind == 1) {  // no-operation: one byte, no length
            ++offset;
            continue;
        }
        if (offset + 1 >= header || tcp[offset + 1] < 2 || offset + tcp[offset + 1] > header) {
            return false;
        }
        if (kind == 2 && tcp[offset + 1] == 4) {
            std::uint32_t value = offset + 2;
            if (load_be16(tcp + value) <= max_mss) {
                return false;
            }
            // Options need not be aligned: the checksum sums whole words, so take the one or
            // two aligned words around the value (the header is a multiple of 4 bytes long).
            std::uint32_t word = value & ~1u;
            std::uint32_t span = value & 1 ? 4 : 2;
            std::uint8_t before[4];
            std::memcpy(before, tcp + word, span);
            store_be16(tcp + value, max_mss);
            ChecksumDelta delta;
            delta.replace(before, tcp + word, span);
            delta.apply(tcp + 16);
            return true;
        }
        offset += tcp[offset + 1];
    }
    return false;
}

}  // namespace meshgate::dataplane
