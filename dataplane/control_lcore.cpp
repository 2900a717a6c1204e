#include "dataplane/control_lcore.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <cstring>

#include "dataplane/encap.hpp"
#include "dataplane/handoff.hpp"
#include "dataplane/headers.hpp"

namespace meshgate::dataplane {
namespace {

constexpr unsigned ring_drain_per_pass = 64;
constexpr control::Duration tick_interval = std::chrono::milliseconds(10);

std::array<std::uint8_t, 17> key_of(const IpAddress& address) {
    std::array<std::uint8_t, 17> key{};
    std::memcpy(key.data(), address.bytes.data(), 16);
    key[16] = address.is_v6 ? 6 : 4;
    return key;
}

bool on_link(const IpAddress& address, const std::optional<IpAddress>& own, std::uint8_t length) {
    if (!own) {
        return false;
    }
    for (unsigned bit = 0; bit < length; ++bit) {
        const unsigned byte = bit / 8;
        const std::uint8_t mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
        if ((address.bytes[byte] & mask) != (own->bytes[byte] & mask)) {
            return false;
        }
    }
    return true;
}

std::uint64_t nanoseconds(control::Timestamp now) {
    return static_cast<std::uint64_t>(now.count());
}

}  // namespace

control::Endpoint to_engine_endpoint(const Endpoint& endpoint) {
    control::Endpoint out;
    out.address = endpoint.address.bytes;
    out.is_v6 = endpoint.address.is_v6;
    out.port = endpoint.port;
    return out;
}

Endpoint from_engine_endpoint(const control::Endpoint& endpoint) {
    Endpoint out;
    out.address.bytes = endpoint.address;
    out.address.is_v6 = endpoint.is_v6;
    out.port = endpoint.port;
    return out;
}

ControlLcore::ControlLcore(control::Engine& engine, SharedTables& shared, SessionTable& sessions,
                           PeerSlot* peers, std::map<control::PeerId, PeerId> slot_of,
                           ControlPort wan, std::optional<ControlPort> uplink,
                           NextHopMacs* next_hops)
    : engine_(engine),
      shared_(shared),
      sessions_(sessions),
      peers_(peers),
      slot_of_(std::move(slot_of)),
      wan_{wan, ArpNd({wan.mac, wan.ipv4, wan.ipv6})},
      next_hops_(next_hops) {
    if (uplink) {
        uplink_.emplace(NeighbourPort{*uplink, ArpNd({uplink->mac, uplink->ipv4, uplink->ipv6})});
    }
    for (const auto& [engine_peer, slot] : slot_of_) {
        engine_of_[slot] = engine_peer;
    }
    activity_cursor_ = slot_of_.end();
}

unsigned ControlLcore::poll(control::Timestamp now, control::WallClock wall) {
    rte_mbuf* packets[ring_drain_per_pass];
    unsigned count = rte_ring_dequeue_burst(shared_.to_control, reinterpret_cast<void**>(packets),
                                            ring_drain_per_pass, nullptr);
    handshakes_.clear();
    held_.clear();
    for (unsigned i = 0; i < count; ++i) {
        if (!on_frame(packets[i], now, wall)) {
            rte_pktmbuf_free(packets[i]);
        }
    }
    if (!handshakes_.empty()) {
        // One call for the pass: the engine batches the initiations' Diffie-Hellman terms.
        const bool under_load =
            rte_ring_count(shared_.to_control) > rte_ring_get_capacity(shared_.to_control) / 8;
        apply(engine_.on_datagrams(handshakes_, now, wall, under_load), now, wall);
        rte_pktmbuf_free_bulk(held_.data(), static_cast<unsigned>(held_.size()));
    }
    if (now >= next_tick_) {
        next_tick_ = now + tick_interval;
        poll_activity(now, wall);
        apply(engine_.tick(now, wall), now, wall);
        wan_.arp.age(nanoseconds(now));
        if (uplink_) {
            uplink_->arp.age(nanoseconds(now));
            resolve_next_hops(nanoseconds(now));
        }
    }
    return count;
}

bool ControlLcore::on_frame(rte_mbuf* packet, control::Timestamp now, control::WallClock wall) {
    const PacketMeta meta = packet_meta(packet);
    if (meta.stage == HandoffStage::encap) {
        // An inner packet for a peer with no usable session: the engine stages it and
        // starts a handshake.
        counters_.staged_packets++;
        auto engine_peer = engine_of_.find(meta.peer);
        if (engine_peer != engine_of_.end()) {
            auto* data = rte_pktmbuf_mtod(packet, const std::uint8_t*);
            apply(
                engine_.send(engine_peer->second, {data, rte_pktmbuf_data_len(packet)}, now, wall),
                now, wall);
        }
        return false;
    }
    if (parse_outer(packet) == OuterKind::udp) {
        counters_.handshake_frames++;
        Endpoint source = udp_source(packet);
        learned_[key_of(source.address)] = rte_pktmbuf_mtod(packet, const rte_ether_hdr*)->src_addr;
        handshakes_.push_back(
            {{udp_payload(packet), udp_payload_length(packet)}, to_engine_endpoint(source)});
        held_.push_back(packet);
        return true;
    }
    counters_.neighbour_frames++;
    NeighbourPort& at = uplink_ && packet->port == uplink_->port.port ? *uplink_ : wan_;
    auto* data = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    if (auto reply = at.arp.on_frame(data, rte_pktmbuf_data_len(packet), nanoseconds(now))) {
        transmit_frame(*reply, at.port);
    }
    return false;
}

void ControlLcore::apply(const control::Actions& actions, control::Timestamp now,
                         control::WallClock wall) {
    std::vector<std::uint32_t> to_retire;
    std::vector<control::PeerId> touched;
    std::vector<const control::Action*> after_retiring;
    for (const control::Action& action : actions) {
        switch (action.kind) {
            case control::Action::Kind::send_to:
                send_datagram(action);
                break;
            case control::Action::Kind::transmit:
                hand_to_owner(action);
                break;
            case control::Action::Kind::install_keypair:
                // The engine may give a new index the slot of one it retired earlier in these
                // same actions; that keypair leaves the slot only below.
                if (sessions_.slot_taken(action.local_index)) {
                    after_retiring.push_back(&action);
                } else {
                    install(action, now);
                }
                touched.push_back(action.peer);
                break;
            case control::Action::Kind::retire_keypair:
                to_retire.push_back(action.local_index);
                touched.push_back(action.peer);
                break;
            case control::Action::Kind::deliver:
            case control::Action::Kind::drop:
                break;
        }
    }
    // Slots first (workers stop choosing a keypair), then the session table, whose retire
    // waits for every worker to pass a quiescent state before freeing.
    for (control::PeerId peer : touched) {
        sync_slot(peer);
    }
    for (std::uint32_t index : to_retire) {
        published_.erase(index);
        sessions_.retire(index);
        counters_.keypairs_retired++;
    }
    for (const control::Action* action : after_retiring) {
        install(*action, now);
        sync_slot(action->peer);
    }
    (void)wall;
}

void ControlLcore::install(const control::Action& action, control::Timestamp now) {
    auto slot = slot_of_.find(action.peer);
    if (slot == slot_of_.end()) {
        return;
    }
    auto keypair = std::make_unique<Keypair>();
    std::memcpy(keypair->receive_key.data(), action.receiving_key.data(), 32);
    std::memcpy(keypair->send_key.data(), action.sending_key.data(), 32);
    keypair->local_index = action.local_index;
    keypair->remote_index = action.remote_index;
    keypair->peer = slot->second;
    keypair->initiator = action.initiator;
    const auto lifetime = engine_.config().reject_after_time - (now - action.birth);
    keypair->expire_at(rte_rdtsc() +
                       static_cast<std::uint64_t>(std::chrono::duration<double>(lifetime).count() *
                                                  static_cast<double>(rte_get_tsc_hz())));
    Keypair* raw = keypair.get();
    if (sessions_.publish(std::move(keypair))) {
        published_[action.local_index] = raw;
        counters_.keypairs_installed++;
    } else {
        counters_.keypairs_refused++;  // its slot is taken: a bug, shown by `show`
    }
}

// Points the peer's slot at the keypairs the engine now holds as current and next, and
// carries the engine's view of the endpoint (handshakes roam too) to the workers.
void ControlLcore::sync_slot(control::PeerId engine_peer) {
    control::Peer* peer = engine_.peer(engine_peer);
    auto slot_id = slot_of_.find(engine_peer);
    if (peer == nullptr || slot_id == slot_of_.end()) {
        return;
    }
    PeerSlot& slot = peers_[slot_id->second];
    auto lookup = [this](const control::Keypair* keypair) -> Keypair* {
        if (keypair == nullptr) {
            return nullptr;
        }
        auto it = published_.find(keypair->local_index);
        return it == published_.end() ? nullptr : it->second;
    };
    slot.current.store(lookup(peer->keypairs.current()), std::memory_order_release);
    slot.next.store(lookup(peer->keypairs.next()), std::memory_order_release);
    if (peer->endpoint) {
        Endpoint endpoint = from_engine_endpoint(*peer->endpoint);
        EndpointRecord record = slot.read_endpoint();
        if (!record.known || !(record.endpoint == endpoint)) {
            if (auto mac =
                    mac_for(endpoint.address,
                            nanoseconds(std::chrono::steady_clock::now().time_since_epoch()))) {
                set_peer_endpoint(slot, {endpoint, *mac, true}, shared_.addresses);
            }
        }
    }
}

// The workers' counters since the last look become the engine's timer events. A slice of the
// peers per tick, so a gateway with 100,000 peers spends bounded time here: each peer is seen
// at least every (peers / slice) ticks, a second at 100,000 peers, well inside the timers'
// granularity (seconds).
void ControlLcore::poll_activity(control::Timestamp now, control::WallClock wall) {
    constexpr std::size_t slice = 1024;
    if (slot_of_.empty()) {
        return;
    }
    for (std::size_t n = 0; n < std::min(slice, slot_of_.size()); ++n) {
        if (activity_cursor_ == slot_of_.end()) {
            activity_cursor_ = slot_of_.begin();
        }
        const auto [engine_peer, slot_id] = *activity_cursor_++;
        PeerSlot& slot = peers_[slot_id];
        Seen& seen = seen_[slot_id];
        const PeerCounters& counters = slot.counters;
        control::DataplaneActivity activity;
        activity.authenticated_received = counters.last_rx_tsc != seen.rx;
        activity.authenticated_sent = counters.last_tx_tsc != seen.tx;
        activity.data_received = counters.last_data_rx_tsc != seen.data_rx;
        activity.data_sent = counters.last_data_tx_tsc != seen.data_tx;
        seen = {counters.last_rx_tsc, counters.last_tx_tsc, counters.last_data_rx_tsc,
                counters.last_data_tx_tsc};
        Keypair* next = slot.next.load(std::memory_order_acquire);
        activity.next_confirmed =
            next != nullptr && next->received_data.load(std::memory_order_acquire);
        if (Keypair* current = slot.current.load(std::memory_order_acquire)) {
            activity.sending_counter = current->send_counter;  // racy read of a growing counter
        }
        if (!activity.authenticated_received && !activity.authenticated_sent &&
            !activity.next_confirmed) {
            continue;
        }
        // Workers roam the endpoint on data; the engine must send handshakes there too.
        EndpointRecord record = slot.read_endpoint();
        if (record.known) {
            if (control::Peer* peer = engine_.peer(engine_peer)) {
                peer->endpoint = to_engine_endpoint(record.endpoint);
            }
            learned_[key_of(record.endpoint.address)] = record.mac;
        }
        apply(engine_.on_dataplane_activity(engine_peer, activity, now, wall), now, wall);
        if (activity.next_confirmed) {
            sync_slot(engine_peer);
        }
    }
}

std::optional<rte_ether_addr> ControlLcore::mac_for(const IpAddress& address,
                                                    std::uint64_t now_ns) {
    // Off-link destinations go to the router; on-link ones to themselves.
    const ControlPort& port = wan_.port;
    IpAddress hop = address;
    if (address.is_v6 ? !on_link(address, port.ipv6, port.ipv6_prefix)
                      : !on_link(address, port.ipv4, port.ipv4_prefix)) {
        const auto& router = address.is_v6 ? port.next_hop_v6 : port.next_hop_v4;
        if (router) {
            hop = *router;
        }
    }
    if (auto it = learned_.find(key_of(hop)); it != learned_.end()) {
        return it->second;
    }
    if (auto mac = wan_.arp.lookup(hop, now_ns)) {
        return mac;
    }
    if (auto request = wan_.arp.request(hop, now_ns)) {
        transmit_frame(*request, port);
    }
    return std::nullopt;
}

// Workers send every exit packet to the uplink's next hop, so its MAC is kept resolved ahead
// of need: asked for whenever ARP/ND holds no fresh answer (ArpNd paces the requests), and
// published as soon as one arrives.
void ControlLcore::resolve_next_hops(std::uint64_t now_ns) {
    if (next_hops_ == nullptr) {
        return;
    }
    for (const auto& hop : {uplink_->port.next_hop_v4, uplink_->port.next_hop_v6}) {
        if (!hop) {
            continue;
        }
        if (auto mac = uplink_->arp.lookup(*hop, now_ns)) {
            const auto published = next_hops_->get(hop->is_v6);
            if (!published || !rte_is_same_ether_addr(&*published, &*mac)) {
                next_hops_->publish(hop->is_v6, *mac);
            }
        } else if (auto request = uplink_->arp.request(*hop, now_ns)) {
            transmit_frame(*request, uplink_->port);
        }
    }
}

void ControlLcore::send_datagram(const control::Action& action) {
    Endpoint destination = from_engine_endpoint(action.endpoint);
    const ControlPort& port = wan_.port;
    const auto& source = destination.address.is_v6 ? port.ipv6 : port.ipv4;
    auto mac = mac_for(destination.address,
                       nanoseconds(std::chrono::steady_clock::now().time_since_epoch()));
    if (!source || !mac) {
        counters_.datagrams_unresolved++;  // the engine retries handshakes; ARP answers by then
        return;
    }
    rte_mbuf* packet = rte_pktmbuf_alloc(port.pool);
    if (packet == nullptr) {
        return;
    }
    void* data = rte_pktmbuf_append(packet, static_cast<std::uint16_t>(action.bytes.size()));
    if (data == nullptr) {
        rte_pktmbuf_free(packet);
        return;
    }
    std::memcpy(data, action.bytes.data(), action.bytes.size());
    OuterAddresses addresses{
        shared_.addresses.wan_mac, *mac, {*source, shared_.addresses.listen_port}, destination};
    if (!prepend_outer(packet, addresses) ||
        rte_eth_tx_burst(port.port, port.tx_queue, &packet, 1) != 1) {
        rte_pktmbuf_free(packet);
        return;
    }
    counters_.datagrams_sent++;
}

void ControlLcore::hand_to_owner(const control::Action& action) {
    auto slot = slot_of_.find(action.peer);
    if (slot == slot_of_.end()) {
        return;
    }
    rte_mbuf* packet = rte_pktmbuf_alloc(wan_.port.pool);
    if (packet == nullptr) {
        return;
    }
    if (!action.bytes.empty()) {
        void* data = rte_pktmbuf_append(packet, static_cast<std::uint16_t>(action.bytes.size()));
        if (data == nullptr) {
            rte_pktmbuf_free(packet);
            return;
        }
        std::memcpy(data, action.bytes.data(), action.bytes.size());
    }
    packet_meta(packet) = {slot->second, HandoffStage::encap};
    WorkerCounters unused;  // a full ring drops and counts here; the control thread has no slot
    if (shared_.handoff->send(peers_[slot->second].owner, &packet, 1, unused) == 1) {
        counters_.transmits_handed_off++;
    }
}

void ControlLcore::transmit_frame(const Frame& bytes, const ControlPort& port) {
    rte_mbuf* packet = rte_pktmbuf_alloc(port.pool);
    if (packet == nullptr) {
        return;
    }
    void* data = rte_pktmbuf_append(packet, static_cast<std::uint16_t>(bytes.size()));
    if (data == nullptr) {
        rte_pktmbuf_free(packet);
        return;
    }
    std::memcpy(data, bytes.data(), bytes.size());
    if (rte_eth_tx_burst(port.port, port.tx_queue, &packet, 1) != 1) {
        rte_pktmbuf_free(packet);
    }
}

}  // namespace meshgate::dataplane
