// Decap's passes over a burst (decap.hpp has the stages as the protocol sees them):
//
//   1 read_messages   each message's place, receiver index and counter; its session entry
//                     starts loading
//   2 find_keypairs   the entries are read; each keypair's line starts loading
//   3 check           unknown, foreign (handed off), expired and replayed messages leave; the
//                     open jobs are built; the lines finish() needs (and, with an uplink,
//                     the exit checks) start loading, and arrive while the burst is decrypted
//     open            one batch call
//   4 finish          replay window, roaming, counters, the inner packet and the source check
//   5 look_up_sources only for sources that are not the sender's own /32 (rare): one bulk
//                     allowed-IPs lookup, then those that do not route back are dropped
//
// Each pass starts the loads the next one needs, for the whole burst: with many peers every
// per-peer line is a miss, and a burst's misses overlap instead of queueing.
#include "dataplane/decap.hpp"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

#include <cstring>

#include "dataplane/encap.hpp"
#include "dataplane/exit_path.hpp"
#include "dataplane/receive.hpp"

namespace meshgate::dataplane {
namespace {

// A transport data message as classify left it, and what decap learns of it. One per packet
// of the burst, on the worker's stack.
struct Message {
    std::uint8_t* start;          // the UDP payload: type, receiver index, counter, sealed data
    std::uint32_t sealed_length;  // of the ciphertext, the tag excluded
    std::uint32_t receiver_index;
    std::uint64_t counter;
    Keypair* keypair;  // nullptr: no session under receiver_index
};

// Pass 1, at the offsets classify set.
void read_messages(const Burst<>& burst, Message* messages, const SessionTable& sessions) {
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        rte_mbuf* packet = burst.packets[i];
        Message& message = messages[i];
        message.start = udp_payload(packet);
        // Classify checked the length covers at least a header and a tag.
        message.sealed_length = udp_payload_length(packet) - wire::data_header_size -
                                static_cast<std::uint32_t>(crypto::aead_tag_size);
        std::memcpy(&message.receiver_index, message.start + 4, 4);  // little-endian, as x86
        std::memcpy(&message.counter, message.start + 8, 8);
        sessions.prefetch(message.receiver_index);
    }
}

// Pass 2.
void find_keypairs(std::uint16_t count, Message* messages, const SessionTable& sessions) {
    for (std::uint16_t i = 0; i < count; ++i) {
        Keypair* keypair = sessions.find(messages[i].receiver_index);
        messages[i].keypair = keypair;
        if (keypair != nullptr) {
            rte_prefetch0(keypair);  // key, peer, expiry, replay scalar: pass 3 reads them
        }
    }
}

// The lines finish() reads and writes besides the keypair's: the replay bitmap's word (only
// for a counter out of order), the peer's slot (endpoint, host address) and its counters.
void prefetch_for_finish(const Keypair& keypair, std::uint64_t counter,
                         const SharedTables& shared) {
    if (const void* word = keypair.replay.word_touched(counter)) {
        rte_prefetch0(word);
    }
    const PeerSlot& peer = shared.peers[keypair.peer];
    rte_prefetch0(&peer);
    rte_prefetch0(&peer.counters);
}

// The open job for a message: in place, the tag at the end of the sealed data. Later steps
// read the counter, the plaintext and its length back from the job.
crypto::AeadJob open_job(const Message& message) {
    std::uint8_t* sealed = message.start + wire::data_header_size;
    return {
        message.keypair->receive_key.data(), message.counter, sealed, sealed, message.sealed_length,
        sealed + message.sealed_length};
}

// Pass 3: drop unknown, expired and replayed messages before any crypto is spent on them, and
// hand off those another worker owns. Keeps the rest, with their jobs and keypairs at the
// same positions.
std::uint16_t check(Burst<>& burst, Message* messages, crypto::AeadJob* jobs, WorkerContext& worker,
                    bool from_handoff, std::uint64_t now) {
    const SharedTables& shared = *worker.shared;
    const ExitShared* exit = worker.exit != nullptr ? worker.exit->shared : nullptr;
    // A copy the loop's stores cannot alias: its owner mask is worked out once a burst.
    const control::IndexLayout layout = shared.index_layout;
    HandoffBatch foreign(*shared.handoff, worker.counters);
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        rte_mbuf* packet = burst.packets[i];
        const Message& message = messages[i];
        Keypair* keypair = message.keypair;
        if (keypair == nullptr) {
            drop_packet(packet, Drop::unknown_receiver_index, worker.counters);
            continue;
        }
        const unsigned owner = layout.owner_of(message.receiver_index);
        if (owner != worker.id && !from_handoff) {
            packet_meta(packet) = {keypair->peer, HandoffStage::decap};
            foreign.add(owner, packet);
            continue;
        }
        if (now > keypair->reject_after_tsc) {
            drop_packet(packet, Drop::keypair_expired, worker.counters);
            continue;
        }
        if (!keypair->replay.check(message.counter)) {
            drop_packet(packet, Drop::replayed_counter, worker.counters);
            continue;
        }
        prefetch_for_finish(*keypair, message.counter, shared);
        if (exit != nullptr) {
            // For exit_outbound's checks, should the packet leave through the uplink (which
            // only the plaintext tells). Asked for now, the lines wait in L2 through the open;
            // asked for only by those checks, a few packets ahead, they were L3 misses at
            // 1420 B, where the open's 90 KB a burst push a peer's lines out of L2 between its
            // packets (bench/RESULTS.md, session 25). Two wasted prefetches for hub traffic.
            prefetch_exit_lines(*exit, keypair->peer);
        }
        jobs[kept] = open_job(message);
        messages[kept].keypair = keypair;
        burst.packets[kept++] = packet;
    }
    foreign.flush();
    burst.count = kept;
    return kept;
}

// Where a message came from. The source address sits at a fixed offset from the frame's
// start whatever the IPv4 header's options, and the source port just before the message:
// no header offsets need reading back (udp_source() does, for any caller).
Endpoint sender_of(const rte_mbuf* packet, const std::uint8_t* message) {
    const auto* ethernet = rte_pktmbuf_mtod(packet, const rte_ether_hdr*);
    Endpoint sender;
    if (ethernet->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        sender.address =
            IpAddress::v4(reinterpret_cast<const rte_ipv4_hdr*>(ethernet + 1)->src_addr);
    } else {
        sender.address =
            IpAddress::v6(reinterpret_cast<const rte_ipv6_hdr*>(ethernet + 1)->src_addr);
    }
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(message) - 1;
    sender.port = rte_be_to_cpu_16(udp->src_port);
    return sender;
}

// The endpoint to answer to is where the last authenticated packet came from (§2 "roaming").
void roam(PeerSlot& peer, rte_mbuf* packet, const std::uint8_t* message,
          const GatewayAddresses& self) {
    const Endpoint source = sender_of(packet, message);
    const auto* ethernet = rte_pktmbuf_mtod(packet, const rte_ether_hdr*);
    if (!peer.endpoint_is(source, ethernet->src_addr)) {
        set_peer_endpoint(peer, {source, ethernet->src_addr, true}, self);
    }
}

// The decrypted packet's source, when it is one sane IPv4 or IPv6 packet of `length` bytes
// or fewer (the rest is padding); `total` is then its own length.
struct InnerPacket {
    bool sane = false;
    bool v6 = false;
    std::uint32_t source_v4 = 0;  // network order
    std::uint16_t total = 0;
};

InnerPacket check_inner(const std::uint8_t* data, std::uint16_t length) {
    InnerPacket inner;
    const std::uint32_t total = ip_packet_length(data, length);
    if (total == 0) {
        return inner;
    }
    inner.sane = true;
    inner.v6 = (data[0] >> 4) == 6;
    if (!inner.v6) {
        inner.source_v4 = reinterpret_cast<const rte_ipv4_hdr*>(data)->src_addr;
    }
    inner.total = static_cast<std::uint16_t>(total);
    return inner;
}

// The source address of an inner packet check_inner() found sane.
IpAddress inner_source(const rte_mbuf* packet) {
    if (is_ipv6_packet(packet)) {
        return IpAddress::v6(rte_pktmbuf_mtod(packet, const rte_ipv6_hdr*)->src_addr);
    }
    return IpAddress::v4(rte_pktmbuf_mtod(packet, const rte_ipv4_hdr*)->src_addr);
}

enum class Finished : std::uint8_t {
    kept,          // goes on to route
    needs_lookup,  // goes on once its source is looked up (pass 5)
    consumed,      // dropped (counted) or a keepalive (freed)
};

// Pass 4, per authenticated packet, in burst order.
Finished finish(rte_mbuf* packet, Keypair& keypair, const crypto::AeadJob& job, std::uint64_t now,
                WorkerContext& worker) {
    const std::uint64_t counter = job.counter;
    // Checked again as it is recorded: two copies of one counter in a single burst both
    // passed the pre-check.
    if (!keypair.replay.accept(counter)) {
        drop_packet(packet, Drop::replayed_counter, worker.counters);
        return Finished::consumed;
    }
    const SharedTables& shared = *worker.shared;
    PeerSlot& peer = shared.peers[keypair.peer];
    roam(peer, packet, job.output - wire::data_header_size, shared.addresses);
    if (!keypair.received_data.load(std::memory_order_relaxed)) {
        keypair.received_data.store(true, std::memory_order_release);
    }
    peer.counters.rx_packets++;
    peer.counters.rx_bytes += rte_pktmbuf_pkt_len(packet);
    peer.counters.last_rx_tsc = now;

    // Keep only the plaintext: strip the outer headers and the transport header, and the
    // padding and tag at the end (and any Ethernet padding after them). Classify made the
    // frame one segment, so the lengths are set outright.
    const auto plaintext = static_cast<std::uint16_t>(job.length);
    if (plaintext == 0) {
        rte_pktmbuf_free(packet);  // a keepalive: its work (timers, roaming) is done
        return Finished::consumed;
    }
    peer.counters.last_data_rx_tsc = now;
    const InnerPacket inner = check_inner(job.output, plaintext);
    if (!inner.sane) {
        drop_packet(packet, Drop::inner_malformed, worker.counters);
        return Finished::consumed;
    }
    packet->data_off =
        static_cast<std::uint16_t>(job.output - static_cast<std::uint8_t*>(packet->buf_addr));
    packet->data_len = inner.total;
    packet->pkt_len = inner.total;
    packet->tx_offload = 0;  // no outer headers any more
    packet_meta(packet) = {keypair.peer, HandoffStage::decap};
    // Anti-spoofing (whitepaper §4): the inner source must route back to the sending peer.
    // A source equal to the sender's recorded IPv4 /32 (PeerSlot::host_ipv4) needs no lookup:
    // no prefix is more specific than a /32, so the lookup could only name this peer.
    const std::uint32_t host = peer.host_ipv4.load(std::memory_order_relaxed);
    if (!inner.v6 && host != 0 && inner.source_v4 == host) {
        return Finished::kept;
    }
    return Finished::needs_lookup;
}

// Pass 5: the sources finish() could not vouch for, `at` their positions in `burst`, take one
// bulk allowed-IPs lookup; those that do not route back to their sender are dropped.
void look_up_sources(Burst<>& burst, const std::uint8_t* at, std::uint16_t count,
                     WorkerContext& worker) {
    IpAddress sources[burst_size];
    for (std::uint16_t j = 0; j < count; ++j) {
        sources[j] = inner_source(burst.packets[at[j]]);
    }
    PeerId owners[burst_size];
    worker.shared->allowed_ips->lookup_burst(sources, owners, count);
    bool refused[burst_size] = {};
    for (std::uint16_t j = 0; j < count; ++j) {
        rte_mbuf* packet = burst.packets[at[j]];
        if (owners[j] != packet_meta(packet).peer) {
            drop_packet(packet, Drop::inner_source_not_allowed, worker.counters);
            refused[at[j]] = true;
        }
    }
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        if (!refused[i]) {
            burst.packets[kept++] = burst.packets[i];
        }
    }
    burst.count = kept;
}

}  // namespace

std::uint16_t decap(Burst<>& received, WorkerContext& worker, bool from_handoff) {
    const SharedTables& shared = *worker.shared;
    // One clock read for the burst: expiry checks and the peers' activity times need no
    // finer grain, and a TSC read costs tens of cycles (it was once per packet in finish()).
    const std::uint64_t now = rte_rdtsc();
    Message messages[burst_size];
    crypto::AeadJob jobs[burst_size];
    read_messages(received, messages, *shared.sessions);
    find_keypairs(received.count, messages, *shared.sessions);
    if (check(received, messages, jobs, worker, from_handoff, now) == 0) {
        return 0;
    }
    crypto::PrefetchRange upcoming[burst_size];
    const std::uint16_t upcoming_count =
        from_handoff ? 0 : lookahead_payloads(worker.lookahead, upcoming);
    const crypto::JobMask authentic =
        worker.crypto->open({jobs, received.count}, {upcoming, upcoming_count});
    std::uint8_t unvouched[burst_size];
    std::uint16_t unvouched_count = 0;
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < received.count; ++i) {
        rte_mbuf* packet = received.packets[i];
        if (((authentic >> i) & 1) == 0) {
            drop_packet(packet, Drop::decrypt_failed, worker.counters);
            continue;
        }
        switch (finish(packet, *messages[i].keypair, jobs[i], now, worker)) {
            case Finished::needs_lookup:
                unvouched[unvouched_count++] = static_cast<std::uint8_t>(kept);
                [[fallthrough]];
            case Finished::kept:
                received.packets[kept++] = packet;
                break;
            case Finished::consumed:
                break;
        }
    }
    received.count = kept;
    if (unvouched_count > 0) [[unlikely]] {
        look_up_sources(received, unvouched, unvouched_count, worker);
    }
    return received.count;
}

}  // namespace meshgate::dataplane
