// Handoff: per-worker rings that carry packets to the worker owning their peer.
//
// Every peer (and so every keypair, send counter and replay window) belongs to one worker.
// RSS cannot keep a peer on one queue (internet return traffic lands anywhere), so a packet
// found on the wrong worker is enqueued to its owner's ring; the owner drains its ring once
// per loop. Rings are multi-producer (any worker), single-consumer (the owner). A full ring
// drops the packet under Drop::handoff_congested, never blocks.
#pragma once

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/burst.hpp"
#include "dataplane/counters.hpp"

namespace meshgate::dataplane {

// What the owner must do with a handed-off packet, carried in the mbuf (a dynamic field).
enum class HandoffStage : std::uint8_t {
    decap,   // ciphertext: look up the keypair, open, check, route
    encap,   // plaintext for `peer`: seal and transmit (or, at the control thread: stage it)
    frame,   // a whole received frame for the control thread (handshake, ARP, ND)
    uplink,  // an IP packet from the uplink for the worker whose NAT slice holds its port:
             // reverse NAT, then seal to the flow's peer (exit_path.hpp)
};

struct PacketMeta {
    std::uint32_t peer;
    HandoffStage stage;
};

// The dynamic field's offset in the mbuf. Written once by register_packet_meta() at start-up,
// before any worker launches; read by every lcore afterwards.
extern int packet_meta_offset;

// Registers the mbuf dynamic field once, at start (cold). Returns false if DPDK refuses.
bool register_packet_meta();
// Inline: every stage of the worker loop reads or writes it for every packet.
inline PacketMeta& packet_meta(rte_mbuf* packet) {
    return *RTE_MBUF_DYNFIELD(packet, packet_meta_offset, PacketMeta*);
}

// Hands a burst to the control thread's ring (`ring`: multi-producer, one consumer), marked
// as whole frames; drops and counts under `when_full` what does not fit. Empties `burst`.
void send_to_control(Burst<>& burst, rte_ring* ring, Drop when_full, WorkerCounters& counters);

class Handoff {
  public:
    // One ring per worker, named `name`_<worker>; `ring_size` a power of two.
    Handoff(const std::string& name, unsigned workers, unsigned ring_size);
    ~Handoff();
    Handoff(const Handoff&) = delete;
    Handoff& operator=(const Handoff&) = delete;

    // Any worker. Enqueues what fits; drops and counts the rest. Returns packets enqueued.
    unsigned send(unsigned owner, rte_mbuf** packets, unsigned count, WorkerCounters& counters);
    // The owner only. Returns the number of packets written to `packets`.
    unsigned receive(unsigned owner, rte_mbuf** packets, unsigned capacity);

    unsigned workers() const { return static_cast<unsigned>(rings_.size()); }

  private:
    std::vector<rte_ring*> rings_;
};

// Packets for other workers, gathered while a stage walks its burst and sent one ring
// operation per run of packets for the same owner (bursts seldom mix owners), instead of one
// per packet: a ring enqueue is an atomic compare-and-swap on a line every worker writes.
// Packets keep their order per owner. Lives on the stage's stack; what is still held goes
// out in flush() or, at the latest, when the batch goes out of scope.
class HandoffBatch {
  public:
    HandoffBatch(Handoff& handoff, WorkerCounters& counters)
        : handoff_(handoff), counters_(counters) {}
    ~HandoffBatch() { flush(); }
    HandoffBatch(const HandoffBatch&) = delete;
    HandoffBatch& operator=(const HandoffBatch&) = delete;

    void add(unsigned owner, rte_mbuf* packet) {
        if (count_ == burst_size || (count_ > 0 && owner != owner_)) {
            flush();
        }
        owner_ = owner;
        packets_[count_++] = packet;
    }
    void flush() {
        if (count_ > 0) {
            handoff_.send(owner_, packets_, count_, counters_);
            count_ = 0;
        }
    }

  private:
    Handoff& handoff_;
    WorkerCounters& counters_;
    rte_mbuf* packets_[burst_size];
    unsigned count_ = 0;
    unsigned owner_ = 0;
};

}  // namespace meshgate::dataplane
