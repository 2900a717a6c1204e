// Masquerade NAT for the exit node (issue 5): a peer's packets leave through the uplink from
// the uplink's own address, and the answers (including ICMP errors about them) find their way
// back to the peer.
//
// One NatTable per worker lcore. Each worker owns a slice of the uplink's port range, so a
// returning packet names its worker by its destination port (owner_of_port) and is handed to
// that worker before translation. The table therefore has exactly one writer and one reader,
// the owning worker, and needs neither atomics nor locks.
//
// Translation works on raw bytes: a pointer to the inner IP header and the bytes the buffer
// holds from there. Checksums are updated incrementally (RFC 1624), never recomputed, so the
// cost does not grow with the payload. The module never reads a clock: callers pass `now` in
// ticks of their choosing (TSC cycles on a worker, a fake clock in tests).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "dataplane/allowed_ips.hpp"
#include "dataplane/flow_index.hpp"
#include "dataplane/fragment_map.hpp"
#include "dataplane/headers.hpp"
#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {

// Why a packet was or was not translated: every reason is a counter the caller keeps.
enum class NatResult : std::uint8_t {
    translated,
    no_flow,          // inbound, and no live mapping matches it
    table_full,       // a new flow, and every entry is taken
    ports_exhausted,  // a new flow, and no port of this worker's range is free for it
    unsupported_protocol,
    fragment,  // a non-first fragment: it carries no ports to translate
    malformed,
};
inline constexpr unsigned nat_result_count = 7;
// Packets per bulk lookup in the burst calls (a worker's RX burst).
inline constexpr unsigned nat_burst_max = 32;
const char* to_string(NatResult result);

// RFC 5382: a connection is "transitory" until the handshake completes and again once it is
// closing; only established connections get the long timeout.
enum class TcpState : std::uint8_t { opening, established, closing };

// An inclusive range of uplink ports (host byte order). Empty when first > last.
struct PortRange {
    std::uint16_t first = 1024;
    std::uint16_t last = 65535;
    std::uint32_t size() const { return first > last ? 0 : std::uint32_t{last} - first + 1; }
    bool contains(std::uint16_t port) const { return port >= first && port <= last; }
    bool operator==(const PortRange&) const = default;
};

// Splits `all` into `workers` contiguous slices of nearly equal size (the first
// size % workers slices hold one port more) and returns slice `worker`. Empty when there are
// more workers than ports.
PortRange split_port_range(PortRange all, unsigned workers, unsigned worker);
// The worker whose slice of split_port_range(all, workers, ·) holds `port`, in O(1); `workers`
// when the port lies outside `all` (not a NAT port: nobody owns it).
unsigned owner_of_port(PortRange all, unsigned workers, std::uint16_t port);

// What steers an inbound packet to the worker whose table holds its flow, parsed exactly as
// translate_inbound() parses it. Any thread.
// - `port`: the uplink port (host order) the packet refers to: the destination port of
//   TCP/UDP, the identifier of an echo reply, and for an ICMP error the source port (or
//   identifier) of the packet it quotes. With owner_of_port() it names the worker. Nothing
//   for a packet that carries no such port (translate_inbound() refuses it and says why).
// - `fragment`: for a fragment, its datagram's key. A first fragment has both; the steering
//   worker remembers the port's owner under the key (FragmentMap) for the later fragments,
//   which have only the key.
struct NatSteering {
    std::optional<std::uint16_t> port;
    std::optional<FragmentKey> fragment;
};
NatSteering nat_inbound_steering(const std::uint8_t* ip, std::uint32_t length);

// Idle timeouts in seconds. RFC 5382 REQ-5: established TCP at least 2 h 4 min, transitory at
// least 4 min; RFC 4787 REQ-5: UDP at least 2 min (5 recommended); ICMP echo: RFC 5508 asks
// for at least 60 s.
struct NatTimeouts {
    std::uint32_t tcp_established = 7440;
    std::uint32_t tcp_transitory = 240;
    std::uint32_t udp = 300;
    std::uint32_t icmp = 60;
};

struct NatOptions {
    std::uint32_t capacity = 1 << 16;  // flows, 8 .. 2^28
    PortRange ports;                   // this worker's slice (split_port_range)
    // The uplink's addresses (masquerade sources). A family whose address is all zero is not
    // translated (unsupported_protocol): 0.0.0.0 and :: are never an uplink's address.
    IpAddress uplink_v4;
    IpAddress uplink_v6 = {{}, true};
    std::uint64_t ticks_per_second = 1'000'000'000;  // the unit of every `now`
    NatTimeouts timeouts;
    // When every port already carries a flow, a new flow shares a port with flows to other
    // remote endpoints; at most this many ports are tried before ports_exhausted, so a peer
    // that fills the range toward one endpoint cannot make each new flow scan the whole range.
    std::uint32_t max_port_probes = 64;
    // Flows retired outside expire() (an outbound packet restarting an idle flow) wait here
    // for the next expire() to report them.
    std::uint32_t pending_records = 256;
    // Datagrams whose first fragment was translated, remembered for their later fragments
    // (fragment_map.hpp) for `fragment_lifetime_seconds`.
    std::uint32_t fragment_slots = 4096;
    std::uint32_t fragment_lifetime_seconds = dataplane::fragment_lifetime_seconds;
    int socket = SOCKET_ID_ANY;
};

// One flow as the flow log reports it: who, the inner tuple, the translated port (the
// translated source is the uplink address and this port), when, and how much each way.
struct NatFlowRecord {
    PeerId peer = no_peer;
    std::uint8_t protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6
    TcpState tcp_state = TcpState::opening;
    IpAddress inner_address;  // the peer's source address
    IpAddress remote_address;
    std::uint16_t inner_port = 0;                  // ICMP: the peer's echo identifier
    std::uint16_t remote_port = 0;                 // ICMP: 0
    std::uint16_t translated_port = 0;             // ICMP: the identifier the internet sees
    std::uint64_t created = 0, last_seen = 0;      // in ticks of `now`
    std::uint64_t packets_out = 0, bytes_out = 0;  // peer -> internet, IP bytes
    std::uint64_t packets_in = 0, bytes_in = 0;    // internet -> peer, IP bytes
};

// Sixteen bytes without padding, on purpose: with three bytes of tail padding the compiler
// copied 13 bytes as two overlapping 8-byte moves, whose second load spans both halves of
// the value just stored and cannot be forwarded (a stall per packet in the NAT bursts).
struct NatOutcome {
    NatResult result = NatResult::malformed;
    bool created = false;  // this packet started the flow (flow log "start")
    std::uint8_t reserved[2] = {};
    PeerId peer = no_peer;   // the flow's owner (inbound: whom to send the packet to)
    std::uint32_t flow = 0;  // the flow's index, for NatTable::flow()
    std::uint32_t reserved_tail = 0;

    // A translated packet's outcome, made as two 8-byte words in registers. Built field by
    // field, the compiler assembled it in a stack slot with stores of 1, 4 and 8 bytes and
    // read it back as whole words that no single store covers: a store-forwarding stall per
    // packet, a fifth of the outbound burst's samples at 1420 B (bench/RESULTS.md, session 26).
    static NatOutcome translated(bool created, PeerId peer, std::uint32_t flow) {
        struct Words {
            std::uint64_t first, second;
        };
        static_assert(std::endian::native == std::endian::little &&
                      offsetof(NatOutcome, peer) == 4 && offsetof(NatOutcome, flow) == 8);
        return std::bit_cast<NatOutcome>(Words{static_cast<std::uint64_t>(NatResult::translated) |
                                                   std::uint64_t{created} << 8 |
                                                   std::uint64_t{peer} << 32,
                                               flow});
    }
};
static_assert(sizeof(NatOutcome) == 16 && std::has_unique_object_representations_v<NatOutcome>);

struct NatCounters {
    std::uint64_t active = 0;  // flows in the table (expired ones count until swept)
    std::uint64_t created = 0;
    std::uint64_t refused = 0;  // table_full + ports_exhausted
    std::uint64_t expired = 0;
    std::uint64_t records_lost = 0;  // ended flows not reported: the pending queue was full
    std::uint64_t fragments = 0;     // later fragments translated as their first fragment was
};

struct NatPacket;  // a parsed header chain (nat.cpp)

// The flows of one worker. Writer and reader: that worker only (return traffic is handed to
// it by port first), so nothing here is atomic or locked. Everything is allocated by the
// constructor; the per-packet calls neither allocate nor throw.
class NatTable {
  public:
    // Cold path: allocates everything the table will ever use; throws std::invalid_argument
    // on bad options and std::runtime_error when DPDK cannot provide the memory. The prefix
    // labels the allocations (for example "nat_w3").
    NatTable(const std::string& name_prefix, const NatOptions& options);
    ~NatTable();
    NatTable(const NatTable&) = delete;
    NatTable& operator=(const NatTable&) = delete;

    // ---- hot path: owning worker only; no allocation, no locks --------------------------
    // `ip` points at an IPv4 or IPv6 header, `length` is how many bytes the buffer holds from
    // there (trailing padding past the IP length is allowed). On anything but `translated`
    // the buffer is left exactly as it was.
    //
    // A peer's packet to the internet: finds or creates the flow, rewrites the source to the
    // uplink address and port (or ICMP echo identifier).
    NatOutcome translate_outbound(std::uint8_t* ip, std::uint32_t length, PeerId peer,
                                  std::uint64_t now);
    // A packet from the internet to the uplink address: echo replies, TCP/UDP, and ICMP errors
    // that quote one of our outbound packets. Rewrites the destination (and the quoted source)
    // back to the peer's; outcome.peer is the flow's owner.
    NatOutcome translate_inbound(std::uint8_t* ip, std::uint32_t length, std::uint64_t now);
    // Whether translate_inbound() would deliver this packet to a flow's peer (a live flow holds
    // it), without changing anything. Cold: for answers the exit refuses before translating.
    bool holds_inbound_flow(const std::uint8_t* ip, std::uint32_t length, std::uint64_t now);

    // The same for a burst: one bulk hash lookup per 32 packets, and the flow entries
    // prefetched before they are touched, so a table far larger than the cache costs little
    // more than a small one. outcomes[i] is exactly what the single call would return.
    void translate_outbound_burst(std::uint8_t* const* ips, const std::uint32_t* lengths,
                                  const PeerId* peers, unsigned count, std::uint64_t now,
                                  NatOutcome* outcomes);
    void translate_inbound_burst(std::uint8_t* const* ips, const std::uint32_t* lengths,
                                 unsigned count, std::uint64_t now, NatOutcome* outcomes);

    // Bounded housekeeping, once per loop or so: first reports flows retired since the last
    // call, then visits at most `budget` entries from where the last call stopped and removes
    // those idle longer than their timeout. Each removed flow is written to `ended` while it
    // has room (the walk stops when it is full); an empty `ended` means no flow log: flows are
    // removed unreported. Returns how many records were written.
    unsigned expire(std::uint64_t now, std::uint32_t budget, std::span<NatFlowRecord> ended);

    // The budget for expire() at `now`, at most `most`: paced so the sweep goes round the whole
    // table once per sweep period (a quarter of the shortest timeout), so housekeeping costs
    // the same per second at any packet rate, and a flow leaves the table at most a quarter of
    // its timeout late (lookups already treat it as gone) as long as calls come often enough
    // that `most` a call keeps that pace. While the table is more than 7/8 full, `most` on
    // every call: there, each entry swept may be a new flow admitted.
    std::uint32_t sweep_due(std::uint64_t now, std::uint32_t most);

    // ---- inspection ----------------------------------------------------------------------
    const NatFlowRecord& flow(std::uint32_t index) const { return entries_[index].record; }
    const NatCounters& counters() const { return counters_; }
    // Datagrams whose first fragment's record another datagram took over before it ended:
    // their later fragments are refused (nat_fragment). Many more than a few means more
    // fragmented datagrams in flight at once than NatOptions::fragment_slots holds.
    std::uint64_t fragments_displaced() const { return fragments_.displaced(); }
    PortRange ports() const { return options_.ports; }
    std::uint32_t capacity() const { return options_.capacity; }

  private:
    // The exact bytes FlowHasher hashes: no padding, every field always written.
    struct FlowKey {
        std::uint8_t version = 0;
        std::uint8_t protocol = 0;
        std::uint16_t local_port = 0;   // forward: inner port; reverse: translated port
        std::uint16_t remote_port = 0;  // 0 for ICMP
        std::uint16_t zero = 0;
        std::array<std::uint8_t, 16> local{};  // forward: inner address; reverse: all zero
        std::array<std::uint8_t, 16> remote{};
    };
    static_assert(sizeof(FlowKey) == 40);

    // Two whole cache lines: at 104 bytes an entry started anywhere in a line and spanned
    // three a third of the time; a lookup compares and a translation updates fields in both.
    struct alignas(64) Entry {
        NatFlowRecord record;
        bool live = false;
        // What each translation adds to the checksums it fixes (RFC 1624's ~m + m' over the
        // words it replaces), summed when the flow is created: the words replaced are always
        // the flow's own (outbound the inner source address and port, inbound the uplink
        // address and translated port), so summing them per packet redid the same sums (76
        // instructions a packet in callgrind of exit_out/64/1000).
        std::uint32_t outbound_address_sum = 0, outbound_port_sum = 0;
        std::uint32_t inbound_address_sum = 0, inbound_port_sum = 0;
    };
    static_assert(sizeof(Entry) == 128);

    // Per protocol class (TCP, UDP, ICMP echo): how many flows use each port of the range,
    // and a bitmap of the ports nobody uses, found a word at a time.
    struct PortPool {
        std::uint32_t* users = nullptr;
        std::uint64_t* unused = nullptr;  // bit set: no flow on that port
        std::uint32_t unused_count = 0;
        std::uint32_t cursor = 0;  // offset into the range where the next search starts
    };

    NatResult check_outbound(const std::uint8_t* ip, std::uint32_t length, NatPacket& packet) const;
    NatResult check_inbound(const std::uint8_t* ip, std::uint32_t length, NatPacket& packet,
                            bool& error) const;
    // Keys of packets: written in place, whole (write_key()), for the hash to read at once.
    static void outbound_key(const std::uint8_t* ip, const NatPacket& packet, FlowKey& key);
    static void inbound_key(const std::uint8_t* ip, const NatPacket& packet, FlowKey& key);
    // `local` may be null (a reverse key's local address is all zero); addresses are 4 bytes
    // (IPv4, stored zero-extended) or 16.
    static void write_key(FlowKey& key, std::uint8_t version, std::uint8_t protocol,
                          std::uint16_t local_port, std::uint16_t remote_port,
                          const std::uint8_t* local, const std::uint8_t* remote);
    // A flow has two keys: as its peer sends (forward: the inner tuple) and as the internet
    // answers (reverse: the translated port and the remote end), each in its own index.
    enum class KeyKind : std::uint8_t { forward, reverse };
    const FlowIndex& index(KeyKind kind) const {
        return kind == KeyKind::forward ? forward_ : reverse_;
    }
    // Whether entry `index` holds the flow `key` names: compared with the entry's own record,
    // which the translation reads next anyway.
    bool holds(std::uint32_t index, KeyKind kind, const FlowKey& key) const;
    // Also leaves each key's hash in `hashes`, for a second look or a new flow's insertion.
    void lookup_bulk(KeyKind kind, const FlowKey* keys, unsigned count, std::int32_t* found,
                     std::uint64_t* hashes) const;
    // `hash` is hasher_(&key): a new flow is inserted under it without hashing again.
    NatOutcome outbound(std::uint8_t* ip, const NatPacket& packet, const FlowKey& key,
                        std::uint64_t hash, std::int32_t found, PeerId peer, std::uint64_t now);
    NatOutcome inbound(std::uint8_t* ip, const NatPacket& packet, std::int32_t found,
                       std::uint64_t now);
    NatOutcome inbound_error(std::uint8_t* ip, const NatPacket& packet, std::uint64_t now);
    // A datagram's later fragments, translated as its first fragment was (fragment_map.hpp).
    NatOutcome outbound_fragment(std::uint8_t* ip, const NatPacket& packet, PeerId peer,
                                 std::uint64_t now);
    NatOutcome inbound_fragment(std::uint8_t* ip, const NatPacket& packet, std::uint64_t now);
    void remember_first_fragment(const std::uint8_t* ip, const NatPacket& packet,
                                 FragmentDirection direction, std::uint32_t flow,
                                 std::uint64_t now);
    // The flow a later fragment's first fragment was translated by, if it is still that flow.
    Entry* fragment_flow(const FragmentKey& key, const NatPacket& packet, std::uint64_t now);
    Entry* inbound_fragment_flow(const std::uint8_t* ip, const NatPacket& packet,
                                 std::uint64_t now);
    NatOutcome fragment_translated(Entry& entry, bool outbound, std::uint32_t bytes,
                                   std::uint64_t now);
    void release();

    std::int32_t lookup(KeyKind kind, const FlowKey& key) const {
        return lookup(kind, key, hasher_(&key));
    }
    std::int32_t lookup(KeyKind kind, const FlowKey& key, std::uint64_t hash) const;
    static const NatOptions& validated(const NatOptions& options);
    bool expired(const Entry& entry, std::uint64_t now) const;
    std::uint64_t timeout(const NatFlowRecord& record) const;
    NatResult create(const FlowKey& forward, std::uint64_t forward_hash, PeerId peer,
                     std::uint64_t now, std::uint32_t& index);
    // Fills the entry's translation sums from its record (addresses and ports set).
    void sum_translations(Entry& entry) const;
    void restart(Entry& entry, PeerId peer, std::uint64_t now);
    void remove(std::uint32_t index);
    void push_pending(const NatFlowRecord& record);
    bool find_port(unsigned pool, FlowKey& reverse) const;
    void take_port(unsigned pool, std::uint16_t port);
    void release_port(unsigned pool, std::uint16_t port);
    static FlowKey forward_key(const NatFlowRecord& record);
    static FlowKey reverse_key(const NatFlowRecord& record);
    const IpAddress& uplink(bool v6) const { return v6 ? options_.uplink_v6 : options_.uplink_v4; }

    NatOptions options_;
    FragmentMap fragments_;
    std::uint64_t timeout_ticks_[4] = {};  // established, transitory, UDP, ICMP
    FlowHasher hasher_;                    // keyed at random: one secret for both indexes
    FlowIndex forward_;
    FlowIndex reverse_;
    Entry* entries_ = nullptr;
    std::uint32_t* free_ = nullptr;  // stack of unused entry indexes
    std::uint32_t free_count_ = 0;
    std::uint32_t sweep_cursor_ = 0;
    std::uint64_t ticks_per_swept_entry_ = 1;  // the sweep period over the capacity
    std::uint64_t swept_until_ = 0;            // `now` up to which sweep_due() has paid out
    PortPool pools_[3];
    NatFlowRecord* pending_ = nullptr;  // ring of flows retired outside expire()
    std::uint32_t pending_head_ = 0, pending_count_ = 0;
    NatCounters counters_;
};

// clamp_tcp_mss() past its first test: the packet may be TCP. Out of line.
bool clamp_tcp_segment_mss(std::uint8_t* ip, std::uint32_t length, std::uint16_t max_mss);

// On a TCP SYN (either direction), lowers an MSS option above `max_mss` to `max_mss` and
// fixes the TCP checksum incrementally, so the peer's segments fit the tunnel. Returns true
// when it changed the packet; anything else (no SYN, no MSS option, malformed) is untouched.
// Inline, the test that answers nearly every packet by its protocol byte: the exit path asks
// for every packet each way (a profile of exit_out/64/1000 had 49 instructions a UDP packet
// with the parse, and a call without it).
inline bool clamp_tcp_mss(std::uint8_t* ip, std::uint32_t length, std::uint16_t max_mss) {
    if (length >= 40 && ((ip[0] >> 4) == 4 ? ip[9] != protocol_tcp
                                           : (ip[0] >> 4) == 6 && (ip[6] == protocol_udp ||
                                                                   ip[6] == protocol_icmpv6))) {
        return false;
    }
    return clamp_tcp_segment_mss(ip, length, max_mss);
}

}  // namespace meshgate::dataplane
