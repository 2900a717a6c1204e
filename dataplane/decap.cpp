#include "dataplane/decap.hpp"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

#include <cstring>

#include "dataplane/encap.hpp"

namespace meshgate::dataplane {
namespace {

// A transport data message as classify left it: where it starts, and its header.
struct TransportHeader {
    std::uint8_t* message;  // the UDP payload: type, receiver index, counter, sealed data
    std::uint16_t length;   // the UDP payload's
    std::uint32_t receiver_index;
    std::uint64_t counter;
};

// Reads the header offsets out of the mbuf's bit fields once; later steps use the pointer.
TransportHeader read_header(rte_mbuf* packet) {
    TransportHeader header;
    header.message = udp_payload(packet);
    header.length = udp_payload_length(packet);
    std::memcpy(&header.receiver_index, header.message + 4, 4);  // little-endian, as x86
    std::memcpy(&header.counter, header.message + 8, 8);
    return header;
}

// The open job for a message: in place, the tag at the end of the sealed data. Decap's later
// steps read the counter, the plaintext and its length back from the job.
crypto::AeadJob open_job(const TransportHeader& header, const Keypair& keypair) {
    std::uint8_t* sealed = header.message + wire::data_header_size;
    const std::uint32_t length =
        header.length - wire::data_header_size - static_cast<std::uint32_t>(crypto::aead_tag_size);
    return {keypair.receive_key.data(), header.counter, sealed, sealed, length, sealed + length};
}

// The message a job opens (its transport header's first byte).
const std::uint8_t* message_of(const crypto::AeadJob& job) {
    return job.output - wire::data_header_size;
}

// Per-burst scratch, on the worker's stack: packet i's keypair and open job.
struct Pending {
    Keypair* keypairs[burst_size];
    crypto::AeadJob jobs[burst_size];
};

// The lines finish() reads and writes for a packet: the keypair's line (replay scalar,
// received_data), the replay word, the peer's slot and counters. look_up() asks for them
// before the burst is opened, for the whole burst at once; decap() asks again a few packets
// ahead of finish(), because a prefetch issued while the miss buffers are full is dropped
// (perf, exit_out/1420/1000: the replay scalars and the endpoint stalled though prefetched).
// Asking again costs an instruction when the line is in.
void prefetch_for_finish(const Keypair& keypair, std::uint64_t counter,
                         const SharedTables& shared) {
    rte_prefetch0(&keypair);
    rte_prefetch0(keypair.replay.word_address(counter));
    const PeerSlot& peer = shared.peers[keypair.peer];
    rte_prefetch0(&peer);
    rte_prefetch0(&peer.counters);
}

// Stage 1: find each packet's keypair; hand off packets owned elsewhere; drop unknown,
// expired and replayed ones before any crypto is spent on them.
std::uint16_t look_up(Burst<>& burst, Pending& pending, WorkerContext& worker, bool from_handoff,
                      std::uint64_t now) {
    const SharedTables& shared = *worker.shared;
    TransportHeader headers[burst_size];
    std::uint32_t indexes[burst_size];
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        headers[i] = read_header(burst.packets[i]);
        indexes[i] = headers[i].receiver_index;
    }
    Keypair* found[burst_size];
    shared.sessions->lookup(indexes, found, burst.count);
    // Start the loads the later stages need (replay window word, the peer's slot) now, so
    // they arrive while the burst is being decrypted: with many peers they are cold.
    // The keypair's line first (key, peer, expiry, replay scalar): the loop below reads it
    // for every packet.
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        if (const Keypair* keypair = found[i]) {
            rte_prefetch0(keypair);
        }
    }
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        if (const Keypair* keypair = found[i]) {
            prefetch_for_finish(*keypair, headers[i].counter, shared);
        }
    }

    HandoffBatch foreign(*shared.handoff, worker.counters);
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        rte_mbuf* packet = burst.packets[i];
        Keypair* keypair = found[i];
        if (keypair == nullptr) {
            drop_packet(packet, Drop::unknown_receiver_index, worker.counters);
            continue;
        }
        unsigned owner = shared.index_layout.owner_of(headers[i].receiver_index);
        if (owner != worker.id && !from_handoff) {
            packet_meta(packet) = {keypair->peer, HandoffStage::decap};
            foreign.add(owner, packet);
            continue;
        }
        if (now > keypair->reject_after_tsc) {
            drop_packet(packet, Drop::keypair_expired, worker.counters);
            continue;
        }
        if (!keypair->replay.check(headers[i].counter)) {
            drop_packet(packet, Drop::replayed_counter, worker.counters);
            continue;
        }
        pending.jobs[kept] = open_job(headers[i], *keypair);
        pending.keypairs[kept] = keypair;
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

// Checks the decrypted packet is one IPv4 or IPv6 packet and trims the padding after it.
// Returns the inner source address, or nothing for a malformed packet.
std::optional<IpAddress> check_inner(rte_mbuf* packet) {
    std::uint16_t length = rte_pktmbuf_data_len(packet);
    const std::uint8_t* data = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    std::uint32_t total;
    IpAddress source;
    if (length >= sizeof(rte_ipv4_hdr) && (data[0] >> 4) == 4) {
        auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(data);
        total = rte_be_to_cpu_16(ip->total_length);
        if (rte_ipv4_hdr_len(ip) < sizeof(rte_ipv4_hdr) || total < rte_ipv4_hdr_len(ip)) {
            return std::nullopt;
        }
        source = IpAddress::v4(ip->src_addr);
    } else if (length >= sizeof(rte_ipv6_hdr) && (data[0] >> 4) == 6) {
        auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(data);
        total = sizeof(rte_ipv6_hdr) + rte_be_to_cpu_16(ip->payload_len);
        source = IpAddress::v6(ip->src_addr);
    } else {
        return std::nullopt;
    }
    if (total > length) {
        return std::nullopt;
    }
    rte_pktmbuf_trim(packet, static_cast<std::uint16_t>(length - total));
    return source;
}

// Packets between finish()'s lines being asked for again and finish() reading them.
constexpr std::uint16_t finish_ahead = 4;

// Stage 3: per authenticated packet, in burst order. Returns the inner source address of a
// packet that goes on to the anti-spoofing check (stage 4), or nothing.
std::optional<IpAddress> finish(rte_mbuf* packet, Keypair& keypair, const crypto::AeadJob& job,
                                std::uint64_t now, WorkerContext& worker) {
    const std::uint64_t counter = job.counter;
    // Checked again as it is recorded: two copies of one counter in a single burst both
    // passed the pre-check.
    if (!keypair.replay.accept(counter)) {
        drop_packet(packet, Drop::replayed_counter, worker.counters);
        return std::nullopt;
    }
    const SharedTables& shared = *worker.shared;
    PeerSlot& peer = shared.peers[keypair.peer];
    roam(peer, packet, message_of(job), shared.addresses);
    if (!keypair.received_data.load(std::memory_order_relaxed)) {
        keypair.received_data.store(true, std::memory_order_release);
    }
    peer.counters.rx_packets++;
    peer.counters.rx_bytes += rte_pktmbuf_pkt_len(packet);
    peer.counters.last_rx_tsc = now;

    // Keep only the plaintext: strip the outer headers and the transport header, and the tag
    // at the end (and any Ethernet padding after it). Classify made the frame one segment.
    const auto plaintext = static_cast<std::uint16_t>(job.length);
    packet->data_off =
        static_cast<std::uint16_t>(job.output - static_cast<std::uint8_t*>(packet->buf_addr));
    packet->data_len = plaintext;
    packet->pkt_len = plaintext;
    if (plaintext == 0) {
        rte_pktmbuf_free(packet);  // a keepalive: its work (timers, roaming) is done
        return std::nullopt;
    }
    peer.counters.last_data_rx_tsc = now;
    std::optional<IpAddress> source = check_inner(packet);
    if (!source) {
        drop_packet(packet, Drop::inner_malformed, worker.counters);
        return std::nullopt;
    }
    packet->l2_len = packet->l3_len = packet->l4_len = 0;
    packet_meta(packet) = {keypair.peer, HandoffStage::decap};
    return source;
}

// Stage 4: anti-spoofing (whitepaper §4): the inner source must route back to the sending
// peer. A source equal to the sender's recorded IPv4 /32 (PeerSlot::host_ipv4) needs no
// lookup; the others take one bulk allowed-IPs lookup together.
std::uint16_t check_sources(Burst<>& burst, const IpAddress* sources, WorkerContext& worker) {
    const SharedTables& shared = *worker.shared;
    IpAddress unknown[burst_size];
    std::uint8_t unknown_at[burst_size];
    std::uint16_t unknown_count = 0;
    PeerId owners[burst_size];
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        const PeerId sender = packet_meta(burst.packets[i]).peer;
        const std::uint32_t host = shared.peers[sender].host_ipv4.load(std::memory_order_relaxed);
        if (!sources[i].is_v6 && host != 0 && sources[i].v4_network_order() == host) {
            owners[i] = sender;
            continue;
        }
        unknown[unknown_count] = sources[i];
        unknown_at[unknown_count++] = static_cast<std::uint8_t>(i);
    }
    if (unknown_count > 0) {
        PeerId found[burst_size];
        shared.allowed_ips->lookup_burst(unknown, found, unknown_count);
        for (std::uint16_t j = 0; j < unknown_count; ++j) {
            owners[unknown_at[j]] = found[j];
        }
    }
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        rte_mbuf* packet = burst.packets[i];
        if (owners[i] != packet_meta(packet).peer) {
            drop_packet(packet, Drop::inner_source_not_allowed, worker.counters);
            continue;
        }
        burst.packets[kept++] = packet;
    }
    burst.count = kept;
    return kept;
}

}  // namespace

std::uint16_t decap(Burst<>& received, WorkerContext& worker, bool from_handoff) {
    Pending pending;
    // One clock read for the burst: expiry checks and the peers' activity times need no
    // finer grain, and a TSC read costs tens of cycles (it was once per packet in finish()).
    const std::uint64_t now = rte_rdtsc();
    if (look_up(received, pending, worker, from_handoff, now) == 0) {
        return 0;
    }
    // Stage 2: one batch open for the burst, in place.
    const crypto::JobMask authentic = worker.crypto->open({pending.jobs, received.count});
    const SharedTables& shared = *worker.shared;
    for (std::uint16_t i = 0; i < received.count && i < finish_ahead; ++i) {
        prefetch_for_finish(*pending.keypairs[i], pending.jobs[i].counter, shared);
    }
    IpAddress sources[burst_size];
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < received.count; ++i) {
        if (i + finish_ahead < received.count) {
            prefetch_for_finish(*pending.keypairs[i + finish_ahead],
                                pending.jobs[i + finish_ahead].counter, shared);
        }
        rte_mbuf* packet = received.packets[i];
        if (((authentic >> i) & 1) == 0) {
            drop_packet(packet, Drop::decrypt_failed, worker.counters);
            continue;
        }
        if (auto source = finish(packet, *pending.keypairs[i], pending.jobs[i], now, worker)) {
            sources[kept] = *source;
            received.packets[kept++] = packet;
        }
    }
    received.count = kept;
    return check_sources(received, sources, worker);
}

}  // namespace meshgate::dataplane
