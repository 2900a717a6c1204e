// A burst of packets as the worker loop moves it between stages.
//
// Stages take a Burst&, keep the packets that go on, and return how many they kept: kept
// packets are compacted to the front in their original order (later stages and TX see the
// arrival order). Dropped packets are counted by reason and freed at once; packets handed to
// another burst (the control thread's, another worker's) are moved, not copied.
// Ownership: a Burst lives on one worker's stack or in its WorkerContext, never shared.
#pragma once

#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include <cassert>
#include <cstdint>

#include "dataplane/counters.hpp"

namespace meshgate::dataplane {

inline constexpr std::uint16_t burst_size = 32;

template <std::uint16_t Capacity = burst_size>
struct Burst {
    rte_mbuf* packets[Capacity];
    std::uint16_t count = 0;

    static constexpr std::uint16_t capacity() { return Capacity; }
    bool empty() const { return count == 0; }
    bool full() const { return count == Capacity; }
    rte_mbuf* operator[](std::uint16_t i) const { return packets[i]; }

    void push(rte_mbuf* packet) {
        assert(count < Capacity);
        packets[count++] = packet;
    }
    void clear() { count = 0; }
};

// Frees a packet and counts it under `reason`.
inline void drop_packet(rte_mbuf* packet, Drop reason, WorkerCounters& counters) {
    counters.count_drop(reason);
    rte_pktmbuf_free(packet);
}

// Compacts `burst` in place: `verdict(packet)` returns true to keep it. Packets it does not
// keep must have been consumed by the verdict (dropped or moved elsewhere).
//
// `prefetch(packet)` runs `ahead` packets before that packet's verdict: a software pipeline
// for the lines the verdict reads. Starting a whole burst's cold lines at once overflows the
// core's miss buffers, and prefetches issued while they are full are dropped: the lines then
// miss again where they are used (perf, exit_out/1420/1000: the rate limiter's line, though
// prefetched a whole AEAD earlier).
template <std::uint16_t Capacity, typename Prefetch, typename Verdict>
std::uint16_t keep_if_ahead(Burst<Capacity>& burst, std::uint16_t ahead, Prefetch&& prefetch,
                            Verdict&& verdict) {
    const std::uint16_t count = burst.count;
    for (std::uint16_t i = 0; i < count && i < ahead; ++i) {
        prefetch(burst.packets[i]);
    }
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < count; ++i) {
        if (i + ahead < count) {
            prefetch(burst.packets[i + ahead]);
        }
        rte_mbuf* packet = burst.packets[i];
        if (verdict(packet)) {
            burst.packets[kept++] = packet;
        }
    }
    burst.count = kept;
    return kept;
}

template <std::uint16_t Capacity, typename Verdict>
std::uint16_t keep_if(Burst<Capacity>& burst, Verdict&& verdict) {
    return keep_if_ahead(
        burst, 0, [](rte_mbuf*) {}, verdict);
}

// Starts loading both lines of an mbuf: the second holds l2_len and the packet's metadata,
// which classification writes.
inline void prefetch_mbuf(const rte_mbuf* packet) {
    rte_prefetch0(packet);
    rte_prefetch0(&packet->cacheline1);
}

// Starts loading the lines of a frame's headers: the first, and the one holding its 58th
// byte, where the headers of a WireGuard transport message end behind Ethernet, IPv4 and UDP
// (type, receiver index and counter: classify reads the type, decap the rest), and where a
// TCP header ends behind Ethernet and IPv4 on the uplink. Usually one line; two when the
// frame starts in the line's last 57 bytes, as it does when headers were prepended to a
// message (a tunnel's or a ring's frames), or behind IPv6. A frame needs its next line anyway.
inline void prefetch_headers(const rte_mbuf* packet) {
    constexpr unsigned headers_last_byte = 57;
    const auto* frame = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    rte_prefetch0(frame);
    rte_prefetch0(frame + headers_last_byte);
}

// Calls `visit(packet)` for every packet of a freshly received burst, in order, as a
// two-stage software prefetch pipeline: the mbuf `mbuf_ahead` packets on (prefetch_mbuf),
// and the header lines `data_ahead` packets on (prefetch_headers), whose address needs that
// mbuf's first line.
// Ports that do not write the mbufs themselves (rings, memif, the benchmarks' injector) hand them
// over cold; issuing every prefetch of the burst at once instead stalled on the miss buffers
// and queued the data loads behind them (perf annotate, exit_out/1420/1000).
template <std::uint16_t Capacity, typename Visit>
void visit_prefetched(const Burst<Capacity>& burst, Visit&& visit) {
    constexpr std::uint16_t mbuf_ahead = 8;
    constexpr std::uint16_t data_ahead = 4;
    const std::uint16_t count = burst.count;
    for (std::uint16_t i = 0; i < count && i < mbuf_ahead; ++i) {
        prefetch_mbuf(burst.packets[i]);
    }
    for (std::uint16_t i = 0; i < count && i < data_ahead; ++i) {
        prefetch_headers(burst.packets[i]);
    }
    for (std::uint16_t i = 0; i < count; ++i) {
        if (i + mbuf_ahead < count) {
            prefetch_mbuf(burst.packets[i + mbuf_ahead]);
        }
        if (i + data_ahead < count) {
            prefetch_headers(burst.packets[i + data_ahead]);
        }
        visit(burst.packets[i]);
    }
}

}  // namespace meshgate::dataplane
