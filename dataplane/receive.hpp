// Receiving one burst ahead. While a port keeps up, a pass processes the burst received in
// the previous pass and receives the next, whose mbufs (then headers) load while this one
// is being decrypted or sealed: a poll-mode loop's only way to hide the first touch of a
// packet, which ports that do not write the mbufs themselves (rings, memif) hand over cold.
// An idle port costs nothing extra: a lone burst is processed in the pass that received it.
//
// Ownership: `lookahead` belongs to the worker that polls the queue, like the queue itself.
#pragma once

#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include "crypto/paced_prefetch.hpp"
#include "dataplane/burst.hpp"

namespace meshgate::dataplane {

// The burst to process now (the one held back last pass, or a fresh one); refills
// `lookahead` from the queue and starts loading its mbufs (prefetch_mbuf).
inline Burst<> receive_ahead(std::uint16_t port, std::uint16_t queue, Burst<>& lookahead) {
    Burst<> received;
    if (!lookahead.empty()) {
        received = lookahead;
    } else {
        received.count = rte_eth_rx_burst(port, queue, received.packets, burst_size);
    }
    lookahead.count = 0;
    if (received.count > 0) {
        lookahead.count = rte_eth_rx_burst(port, queue, lookahead.packets, burst_size);
        for (std::uint16_t i = 0; i < lookahead.count; ++i) {
            prefetch_mbuf(lookahead.packets[i]);
        }
    }
    return received;
}

// The held-back burst's header lines (prefetch_headers): call once the current burst has
// been classified, so the mbuf lines whose fields give these addresses have arrived.
inline void prefetch_lookahead_headers(const Burst<>& lookahead) {
    for (std::uint16_t i = 0; i < lookahead.count; ++i) {
        prefetch_headers(lookahead.packets[i]);
    }
}

// The held-back burst's bytes past its first lines (prefetch_lookahead_headers asked for
// those), for the current burst's open or seal to fetch while it computes
// (crypto/paced_prefetch.hpp). Returns how many ranges it wrote (at most burst_size).
inline std::uint16_t lookahead_payloads(const Burst<>& lookahead, crypto::PrefetchRange* ranges) {
    constexpr std::uint32_t header_bytes = crypto::PacedPrefetch::line_size;
    std::uint16_t count = 0;
    for (std::uint16_t i = 0; i < lookahead.count; ++i) {
        const rte_mbuf* packet = lookahead.packets[i];
        const std::uint32_t length = rte_pktmbuf_data_len(packet);
        if (length > header_bytes) {
            ranges[count++] = {rte_pktmbuf_mtod(packet, const std::uint8_t*) + header_bytes,
                               length - header_bytes};
        }
    }
    return count;
}

// Frees what is still held back (the worker is stopping).
inline void release_lookahead(Burst<>& lookahead) {
    rte_pktmbuf_free_bulk(lookahead.packets, lookahead.count);
    lookahead.count = 0;
}

}  // namespace meshgate::dataplane
