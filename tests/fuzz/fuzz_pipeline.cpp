// libFuzzer target: any bytes into the worker loop, from each side a packet can come from, so
// the data plane's whole attack surface is fuzzed through the code that runs in production.
// A fixture gateway (tests/support/hub_fixture.hpp) with two workers, two simulated peers
// holding `peers` and `exit`, and an uplink with NAT gets the input as:
//
//   kind 0: a frame on the WAN port, as anyone on the internet can send one: classify, and for
//           transport data decap's lookups and pre-checks and the tag check;
//   kind 1: an inner packet sealed by a configured peer, which may put any bytes there: decap's
//           inner checks and anti-spoofing, route (echo answers, ICMP errors, TTL, the tunnel
//           MTU), encap and its fragmentation, the exit's policy, MSS clamp, NAT, uplink
//           fragmentation;
//   kind 2: a frame from the uplink's router: classify_uplink, steering, reverse NAT and ICMP
//           error translation, answers from the uplink address, delivery to a peer.
//
// The first byte picks the kind (its value mod 3), the worker whose queue receives it (bit 2)
// and, for kind 1, the peer (bit 3). The rest is the frame or the inner packet (at most 1900
// bytes: the fixture's frames are single 2 KiB buffers). Packets keep flowing state between inputs
// (NAT flows, replay windows), as a gateway's do.
//
// Properties checked, beyond not crashing (ASan/UBSan in the sanitizer build):
// - nothing leaks: once the workers are idle and what they sent or queued for the control
//   thread is freed, the packet pool holds every packet again, but for the later fragments
//   the workers hold while they wait for their first;
// - every frame sent to a peer opens with that peer's key;
// - no packet vanishes uncounted: each input but a keepalive raises the workers' sent, handed
//   to control, dropped and held counts.
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/fuzz/fuzz_support.hpp"
#include "tests/support/hub_fixture.hpp"

namespace {

using meshgate::test::HubFixture;

using meshgate::fuzz::check;

struct World {
    meshgate::fuzz::FuzzEal eal{"fuzz-pipeline", 1024};
    std::unique_ptr<HubFixture> hub = std::make_unique<HubFixture>(HubFixture::Options{
        .peers = 2,
        .workers = 2,
        .permissions = meshgate::dataplane::permission_peers | meshgate::dataplane::permission_exit,
        .exit = true});
};

rte_mbuf* frame_of(const std::uint8_t* data, std::size_t size) {
    rte_mbuf* frame = rte_pktmbuf_alloc(HubFixture::pool());
    if (frame == nullptr || size > rte_pktmbuf_tailroom(frame)) {
        rte_pktmbuf_free(frame);
        return nullptr;
    }
    std::memcpy(rte_pktmbuf_append(frame, static_cast<std::uint16_t>(size)), data, size);
    return frame;
}

// Packets the workers hold on purpose: later fragments from the uplink waiting for their first
// (early_fragments.hpp), which leave by being released or dropped.
unsigned held_fragments(HubFixture& hub) {
    unsigned held = 0;
    for (unsigned w = 0; w < 2; ++w) {
        held += hub.exit_worker(w).fragments.early.held();
    }
    return held;
}

// Everything the workers have done with packets, in sum: each packet they take in is sent,
// handed to the control thread, dropped (counted under a reason) or held as an early fragment.
// Splitting and answering only add to it, so an input that does not raise it vanished uncounted.
std::uint64_t outcomes(HubFixture& hub) {
    std::uint64_t sum = held_fragments(hub);
    for (unsigned w = 0; w < 2; ++w) {
        const meshgate::dataplane::WorkerCounters& counters = hub.worker(w).counters;
        sum += counters.tx_packets + counters.to_control + counters.total_drops();
    }
    return sum;
}

// Frees what the workers sent and what they queued for the control thread; checks that each
// frame for a peer opens with its key.
void drain(HubFixture& hub) {
    for (unsigned w = 0; w < 2; ++w) {
        for (rte_mbuf* sent : hub.transmitted(w)) {
            check(hub.open_frame(hub.client(0), sent) || hub.open_frame(hub.client(1), sent));
            rte_pktmbuf_free(sent);
        }
        for (rte_mbuf* sent : hub.uplink_transmitted(w)) {
            rte_pktmbuf_free(sent);
        }
    }
    void* queued;
    while (rte_ring_dequeue(hub.to_control(), &queued) == 0) {
        rte_pktmbuf_free(static_cast<rte_mbuf*>(queued));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World world;
    HubFixture& hub = *world.hub;
    if (size < 1) {
        return 0;
    }
    const unsigned in_use = rte_mempool_in_use_count(HubFixture::pool()) - held_fragments(hub);
    const std::uint64_t outcomes_before = outcomes(hub);
    // Whether the input must leave a count: not when it was never injected, nor a keepalive
    // (an empty inner packet), which decap consumes without one.
    bool counted = false;
    const std::uint8_t* packet = data + 1;
    const std::size_t length = std::min<std::size_t>(size - 1, 1900);
    const unsigned worker = (data[0] >> 2) & 1;
    switch (data[0] % 3) {
        case 0:
            if (rte_mbuf* frame = frame_of(packet, length)) {
                hub.inject(worker, &frame, 1);
                counted = true;
            }
            break;
        case 1: {
            rte_mbuf* frame =
                hub.client_frame(hub.client((data[0] >> 3) & 1), {packet, packet + length});
            counted = length != 0;
            hub.inject(worker, &frame, 1);
            break;
        }
        default:
            if (rte_mbuf* frame = frame_of(packet, length)) {
                hub.inject_uplink(worker, frame);
                counted = true;
            }
    }
    hub.run_until_idle();
    check(!counted || outcomes(hub) > outcomes_before);
    drain(hub);
    check(rte_mempool_in_use_count(HubFixture::pool()) - held_fragments(hub) == in_use);
    return 0;
}
