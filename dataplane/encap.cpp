#include "dataplane/encap.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <emmintrin.h>

#include <bit>
#include <cstring>

#include "dataplane/fragmentation.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint32_t padding_multiple = 16;
// Packets between a destination's keypairs being prefetched and used.
constexpr std::uint16_t keypair_ahead = 4;

bool usable(const Keypair* keypair, std::uint64_t now_tsc) {
    return keypair != nullptr && now_tsc <= keypair->send_reject_after_tsc &&
           keypair->send_counter < control::ReplayWindow::reject_after_messages;
}

// To the control thread: it queues the packet for the peer and initiates a handshake.
void await_session(rte_mbuf* packet, WorkerContext& worker) {
    if (rte_ring_enqueue(worker.shared->to_control, packet) != 0) {
        drop_packet(packet, Drop::no_session_queue_full, worker.counters);
        return;
    }
    worker.counters.to_control++;
}

// Pads the inner packet (whitepaper §5.4.6: to a multiple of 16, but not past the MTU),
// prepends the transport header and leaves room for the tag. False: no room in the mbuf.
bool frame_message(rte_mbuf* packet, const Keypair& keypair, std::uint64_t counter,
                   std::uint16_t mtu) {
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    std::uint32_t padded = (length + padding_multiple - 1) / padding_multiple * padding_multiple;
    if (padded > mtu) {
        padded = std::max<std::uint32_t>(length, mtu);
    }
    auto* tail = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(
        packet, static_cast<std::uint16_t>(padded - length + crypto::aead_tag_size)));
    if (tail == nullptr) {
        return false;
    }
    // The padding is under 16 bytes and the tag's 16 follow it: one 16-byte store of zeros
    // covers it, whatever its length, and the seal writes the tag over the rest. A memset of
    // the few bytes was a library call a packet for most sizes that are not multiples of 16.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tail), _mm_setzero_si128());
    auto* header =
        reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(packet, wire::data_header_size));
    if (header == nullptr) {
        return false;
    }
    const std::uint32_t type = wire::transport_data;  // little-endian on the wire, as x86
    std::memcpy(header, &type, 4);
    std::memcpy(header + 4, &keypair.remote_index, 4);
    std::memcpy(header + 8, &counter, 8);
    return true;
}

// Seals and sends the fragments split_for_tunnel() made: each fits, so none is split again.
void send_pieces(Burst<>& pieces, WorkerContext& worker) {
    encap(pieces, worker);
    transmit(pieces, worker);
}

// A packet larger than the tunnel MTU (an answer from the internet, up to the uplink's MTU) is
// split into IPv4 fragments that fit, as a router forwarding into a narrower link does; they
// go into `pieces`, sealed and sent by the caller. What may not be split (DF, IPv6) is
// dropped: the tunnel MTU is the interface's, as in kernel WireGuard, never exceeded.
void split_for_tunnel(rte_mbuf* packet, WorkerContext& worker, Burst<>& pieces) {
    rte_mbuf* fragments[max_fragments];
    unsigned count = 0;
    switch (fragment_ipv4(packet, worker.shared->tunnel_mtu, fragments, count)) {
        case FragmentResult::fragmented:
            break;
        case FragmentResult::not_allowed:
            drop_packet(packet, Drop::tunnel_too_big, worker.counters);
            return;
        case FragmentResult::too_many:
            drop_packet(packet, Drop::tunnel_too_many_fragments, worker.counters);
            return;
    }
    worker.counters.fragments_made += count;
    for (unsigned i = 0; i < count; ++i) {
        if (pieces.full()) {
            send_pieces(pieces, worker);
        }
        pieces.push(fragments[i]);
    }
}

}  // namespace

void set_peer_endpoint(PeerSlot& peer, const EndpointRecord& record, const GatewayAddresses& self) {
    const auto& source = record.endpoint.address.is_v6 ? self.wan_ipv6 : self.wan_ipv4;
    OuterTemplate headers;  // not usable: encap drops (endpoint_unknown)
    if (record.known && source) {
        headers = outer_template(
            {self.wan_mac, record.mac, {*source, self.listen_port}, record.endpoint});
    }
    peer.write_endpoint(record, headers);
}

Keypair* sending_keypair(const PeerSlot& peer, std::uint64_t now_tsc) {
    Keypair* next = peer.next.load(std::memory_order_acquire);
    if (next != nullptr && next->received_data.load(std::memory_order_acquire) &&
        usable(next, now_tsc)) {
        return next;
    }
    Keypair* current = peer.current.load(std::memory_order_acquire);
    return usable(current, now_tsc) ? current : nullptr;
}

std::uint16_t encap(Burst<>& outgoing, WorkerContext& worker,
                    std::span<const crypto::PrefetchRange> upcoming) {
    const SharedTables& shared = *worker.shared;
    const std::uint64_t now = rte_rdtsc();
    crypto::AeadJob jobs[burst_size];
    PeerSlot* peers[burst_size];
    // A software pipeline of loads: every destination's slot line (keypair pointers) first,
    // then, `keypair_ahead` packets before their packet is framed, the keypairs it points to
    // and the slot's other two lines (the outer headers, the counters). Started for the whole
    // burst at once, the keypair prefetches found the miss buffers full and were dropped (see
    // keep_if_ahead).
    const std::uint16_t count = outgoing.count;
    for (std::uint16_t i = 0; i < count; ++i) {
        peers[i] = &shared.peers[packet_meta(outgoing.packets[i]).peer];
        rte_prefetch0(peers[i]);
    }
    for (std::uint16_t i = 0; i < count && i < keypair_ahead; ++i) {
        prefetch_sending_lines(*peers[i]);
    }
    std::uint16_t kept = 0;
    // Frames over IPv6, whose UDP checksum covers the ciphertext: finished after the seal.
    std::uint64_t checksum_after_seal = 0;
    Burst<> pieces;  // fragments of packets too big for the tunnel, sent on their own
    for (std::uint16_t i = 0; i < count; ++i) {
        if (i + keypair_ahead < count) {
            prefetch_sending_lines(*peers[i + keypair_ahead]);
        }
        rte_mbuf* packet = outgoing.packets[i];
        if (rte_pktmbuf_data_len(packet) > shared.tunnel_mtu) [[unlikely]] {
            split_for_tunnel(packet, worker, pieces);
            continue;
        }
        PeerSlot& peer = *peers[i];
        Keypair* keypair = sending_keypair(peer, now);
        if (keypair == nullptr) {
            await_session(packet, worker);
            continue;
        }
        // Checked before a counter is taken: a packet with nowhere to go uses no nonce.
        const LoadedOuter outer = peer.load_outer();
        const unsigned family = outer_family(outer);
        if (family == 0) {
            drop_packet(packet, Drop::endpoint_unknown, worker.counters);
            continue;
        }
        if (rte_pktmbuf_data_len(packet) > 0) {
            peer.counters.last_data_tx_tsc = now;  // not a keepalive
        }
        const std::uint64_t counter = keypair->send_counter++;
        if (!frame_message(packet, *keypair, counter, shared.tunnel_mtu)) {
            drop_packet(packet, Drop::tx_failed, worker.counters);
            continue;
        }
        std::uint8_t* message = rte_pktmbuf_mtod(packet, std::uint8_t*);
        std::uint32_t plaintext = rte_pktmbuf_data_len(packet) - wire::data_header_size -
                                  static_cast<std::uint32_t>(crypto::aead_tag_size);
        // The outer headers go on now, not after the seal: the seal streams a burst's payloads
        // through L1 (45 KB at 1420 B), so the mbuf's lines and the peer's would be fetched
        // again to frame it afterwards.
        if (!prepend_headers(packet, outer)) {
            drop_packet(packet, Drop::tx_failed, worker.counters);
            continue;
        }
        if (family == 6) {
            checksum_after_seal |= std::uint64_t{1} << kept;
        }
        jobs[kept] = {keypair->send_key.data(),
                      counter,
                      message + wire::data_header_size,
                      message + wire::data_header_size,
                      plaintext,
                      message + wire::data_header_size + plaintext};
        peer.counters.tx_packets++;
        peer.counters.tx_bytes += rte_pktmbuf_pkt_len(packet);
        peer.counters.last_tx_tsc = now;
        outgoing.packets[kept++] = packet;
    }
    if (!pieces.empty()) [[unlikely]] {
        send_pieces(pieces, worker);
    }
    outgoing.count = kept;
    if (kept == 0) {
        return 0;
    }
    worker.crypto->seal({jobs, kept}, upcoming);
    while (checksum_after_seal != 0) {
        finish_outer_v6(outgoing.packets[std::countr_zero(checksum_after_seal)]);
        checksum_after_seal &= checksum_after_seal - 1;
    }
    return kept;
}

void transmit(Burst<>& frames, WorkerContext& worker) {
    transmit_on(frames, worker.port, worker.tx_queue, worker.counters);
}

void transmit_on(Burst<>& frames, std::uint16_t port, std::uint16_t queue,
                 WorkerCounters& counters) {
    if (frames.count == 0) {
        return;
    }
    std::uint16_t sent = rte_eth_tx_burst(port, queue, frames.packets, frames.count);
    for (std::uint16_t i = 0; i < sent; ++i) {
        counters.tx_packets++;
        counters.tx_bytes += rte_pktmbuf_pkt_len(frames.packets[i]);
    }
    for (std::uint16_t i = sent; i < frames.count; ++i) {
        drop_packet(frames.packets[i], Drop::tx_failed, counters);
    }
    frames.clear();
}

}  // namespace meshgate::dataplane
