#include "dataplane/handoff.hpp"

#include <rte_mbuf_dyn.h>

#include <stdexcept>

namespace meshgate::dataplane {

int packet_meta_offset = -1;

bool register_packet_meta() {
    if (packet_meta_offset >= 0) {
        return true;
    }
    static const rte_mbuf_dynfield description = {"meshgate_packet_meta", sizeof(PacketMeta),
                                                  alignof(PacketMeta), 0};
    packet_meta_offset = rte_mbuf_dynfield_register(&description);
    return packet_meta_offset >= 0;
}

void send_to_control(Burst<>& burst, rte_ring* ring, Drop when_full, WorkerCounters& counters) {
    if (burst.count == 0) {
        return;
    }
    for (std::uint16_t i = 0; i < burst.count; ++i) {
        packet_meta(burst.packets[i]) = {0, HandoffStage::frame};
    }
    unsigned queued =
        rte_ring_enqueue_burst(ring, reinterpret_cast<void**>(burst.packets), burst.count, nullptr);
    counters.to_control += queued;
    for (unsigned i = queued; i < burst.count; ++i) {
        drop_packet(burst.packets[i], when_full, counters);
    }
    burst.clear();
}

Handoff::Handoff(const std::string& name, unsigned workers, unsigned ring_size) {
    for (unsigned worker = 0; worker < workers; ++worker) {
        std::string ring_name = name + "_" + std::to_string(worker);
        rte_ring* ring =
            rte_ring_create(ring_name.c_str(), ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
        if (ring == nullptr) {
            for (rte_ring* made : rings_) {
                rte_ring_free(made);
            }
            throw std::runtime_error("handoff: cannot create ring " + ring_name);
        }
        rings_.push_back(ring);
    }
}

Handoff::~Handoff() {
    for (rte_ring* ring : rings_) {
        rte_mbuf* packet;
        while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&packet)) == 0) {
            rte_pktmbuf_free(packet);
        }
        rte_ring_free(ring);
    }
}

unsigned Handoff::send(unsigned owner, rte_mbuf** packets, unsigned count,
                       WorkerCounters& counters) {
    unsigned sent =
        rte_ring_enqueue_burst(rings_[owner], reinterpret_cast<void**>(packets), count, nullptr);
    counters.handed_off += sent;
    for (unsigned i = sent; i < count; ++i) {
        drop_packet(packets[i], Drop::handoff_congested, counters);
    }
    return sent;
}

unsigned Handoff::receive(unsigned owner, rte_mbuf** packets, unsigned capacity) {
    return rte_ring_dequeue_burst(rings_[owner], reinterpret_cast<void**>(packets), capacity,
                                  nullptr);
}

}  // namespace meshgate::dataplane
