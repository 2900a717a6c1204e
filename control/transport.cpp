// Engine: transport data (whitepaper §5.4.6), one packet at a time. The gateway's data plane
// does the same with the batch engine; this path serves keepalives, the tests and the interop
// harness.
#include <cstring>

#include "control/engine.hpp"
#include "crypto/aead.hpp"

namespace meshgate::control {
namespace {

constexpr std::size_t padding_multiple = 16;

// Inner packets are padded to 16 bytes; the IP header says how long the packet really is.
std::size_t inner_length(std::span<const std::uint8_t> plaintext) {
    if (plaintext.size() >= 20 && (plaintext[0] >> 4) == 4) {
        std::size_t total = std::size_t{plaintext[2]} << 8 | plaintext[3];
        return std::min(total, plaintext.size());
    }
    if (plaintext.size() >= 40 && (plaintext[0] >> 4) == 6) {
        std::size_t total = 40 + (std::size_t{plaintext[4]} << 8 | plaintext[5]);
        return std::min(total, plaintext.size());
    }
    return plaintext.size();
}

}  // namespace

void Engine::seal_and_send(Peer& peer, Keypair& keypair, std::span<const std::uint8_t> packet,
                           Actions& out) {
    const std::uint64_t counter = keypair.sending_counter++;
    const std::size_t padded =
        (packet.size() + padding_multiple - 1) / padding_multiple * padding_multiple;
    std::vector<std::uint8_t> plaintext(packet.begin(), packet.end());
    plaintext.resize(padded, 0);
    std::vector<std::uint8_t> message(sizeof(TransportHeader) + padded + tag_bytes);
    TransportHeader header{static_cast<std::uint32_t>(MessageType::transport_data),
                           keypair.remote_index, counter};
    std::memcpy(message.data(), &header, sizeof(header));
    crypto::aead_seal({message.data() + sizeof(header), padded + tag_bytes}, keypair.sending,
                      counter, plaintext, {});
    Action action{};
    action.kind = Action::Kind::send_to;
    action.peer = peer.id;
    action.endpoint = *peer.endpoint;
    action.bytes = std::move(message);
    out.push_back(std::move(action));
}

bool Engine::usable_for_sending(const Keypair& keypair, Timestamp now) const {
    return now - keypair.birth < config_.reject_after_time &&
           keypair.sending_counter < config_.reject_after_messages;
}

void Engine::stage(Peer& peer, std::span<const std::uint8_t> packet) {
    if (peer.staged.size() >= config_.max_staged_packets) {
        peer.staged.pop_front();  // the oldest goes: a newer packet is more likely still wanted
        drops_[static_cast<std::size_t>(EngineDrop::staged_overflow)]++;
    }
    peer.staged.emplace_back(packet.begin(), packet.end());
}

Actions Engine::send(PeerId id, std::span<const std::uint8_t> packet, Timestamp now,
                     WallClock wall) {
    Actions out;
    if (Peer* target = peer(id)) {
        send_data(*target, packet, now, wall, out);
    }
    return out;
}

void Engine::send_data(Peer& peer, std::span<const std::uint8_t> packet, Timestamp now,
                       WallClock wall, Actions& out) {
    Keypair* keypair = peer.keypairs.current();
    if (keypair == nullptr || !usable_for_sending(*keypair, now) || !peer.endpoint) {
        // No session: keep the packet and start one (whitepaper §6.2). Keepalives are not
        // worth keeping, but they still ask for a handshake.
        if (!packet.empty()) {
            stage(peer, packet);
        }
        send_initiation(peer, now, wall, false, out);
        return;
    }
    if (config_.transport_in_dataplane) {
        // The owner worker seals it, with the counter it owns.
        Action action{};
        action.kind = Action::Kind::transmit;
        action.peer = peer.id;
        action.bytes.assign(packet.begin(), packet.end());
        out.push_back(std::move(action));
    } else {
        seal_and_send(peer, *keypair, packet, out);
    }
    peer.counters.tx_bytes += packet.size();
    on_authenticated_packet_sent(peer, now);
    if (!packet.empty()) {
        on_data_sent(peer, now);
    }
    keep_key_fresh_after_sending(peer, *keypair, now, wall, out);
}

// Keep the key fresh (whitepaper §6.2): the initiator rekeys after REKEY_AFTER_TIME; either
// side after REKEY_AFTER_MESSAGES.
void Engine::keep_key_fresh_after_sending(Peer& peer, const Keypair& keypair, Timestamp now,
                                          WallClock wall, Actions& out) {
    if ((keypair.initiator && now - keypair.birth >= config_.rekey_after_time) ||
        keypair.sending_counter >= config_.rekey_after_messages) {
        send_initiation(peer, now, wall, false, out);
    }
}

// The initiator rekeys before its keypair expires even if it only receives (§6.2).
void Engine::keep_key_fresh_after_receiving(Peer& peer, Timestamp now, WallClock wall,
                                            Actions& out) {
    Keypair* current = peer.keypairs.current();
    if (current != nullptr && current->initiator && !peer.timers.sent_lastminute_handshake &&
        now - current->birth >=
            config_.reject_after_time - config_.keepalive_timeout - config_.rekey_timeout) {
        peer.timers.sent_lastminute_handshake = true;
        send_initiation(peer, now, wall, false, out);
    }
}

void Engine::send_staged(Peer& peer, Timestamp now, WallClock wall, Actions& out) {
    std::deque<std::vector<std::uint8_t>> queued;
    queued.swap(peer.staged);
    for (const auto& packet : queued) {
        send_data(peer, packet, now, wall, out);
    }
}

void Engine::on_data(std::span<const std::uint8_t> message, const Endpoint& from, Timestamp now,
                     WallClock wall, Actions& out) {
    TransportHeader header;
    std::memcpy(&header, message.data(), sizeof(header));
    const PeerId* owner = indexes_.find(header.receiver_index);
    Peer* sender = owner != nullptr ? peer(*owner) : nullptr;
    Keypair* keypair = sender != nullptr ? sender->keypairs.find(header.receiver_index) : nullptr;
    if (keypair == nullptr) {
        count(EngineDrop::unknown_index, out);
        return;
    }
    if (now - keypair->birth >= config_.reject_after_time) {
        count(EngineDrop::keypair_expired, out, sender->id);
        return;
    }
    // Checked before decryption (cheap), recorded only after the tag verifies.
    if (!keypair->replay.check(header.counter)) {
        count(EngineDrop::replayed_counter, out, sender->id);
        return;
    }
    std::span<const std::uint8_t> sealed = message.subspan(sizeof(TransportHeader));
    std::vector<std::uint8_t> plaintext(sealed.size() - tag_bytes);
    if (!crypto::aead_open(plaintext, keypair->receiving, header.counter, sealed, {})) {
        count(EngineDrop::decrypt_failed, out, sender->id);
        return;
    }
    keypair->replay.update(header.counter);

    sender->endpoint = from;  // roaming: the last authenticated source wins
    confirm_next(*sender, keypair, now, wall, out);
    on_authenticated_packet_received(*sender, now);

    if (!plaintext.empty()) {
        on_data_received(*sender, now);
        sender->counters.rx_bytes += plaintext.size();
        plaintext.resize(inner_length(plaintext));
        Action deliver{};
        deliver.kind = Action::Kind::deliver;
        deliver.peer = sender->id;
        deliver.endpoint = from;
        deliver.bytes = std::move(plaintext);
        out.push_back(std::move(deliver));
    }
    keep_key_fresh_after_receiving(*sender, now, wall, out);
}

// A packet authenticated with `keypair`: if it is the responder's `next`, the initiator has
// proven it holds it, so it becomes current (and waiting packets can go).
void Engine::confirm_next(Peer& peer, const Keypair* keypair, Timestamp now, WallClock wall,
                          Actions& out) {
    bool confirmed = false;
    auto pushed_out = peer.keypairs.received_with(keypair, confirmed);
    if (pushed_out) {
        std::vector<std::unique_ptr<Keypair>> retired;
        retired.push_back(std::move(pushed_out));
        retire(peer, std::move(retired), out);
    }
    if (confirmed) {
        on_handshake_complete(peer, now, wall);
        send_staged(peer, now, wall, out);
    }
}

Actions Engine::on_dataplane_activity(PeerId id, const DataplaneActivity& activity, Timestamp now,
                                      WallClock wall) {
    Actions out;
    Peer* target = peer(id);
    if (target == nullptr) {
        return out;
    }
    if (activity.next_confirmed && target->keypairs.next() != nullptr) {
        confirm_next(*target, target->keypairs.next(), now, wall, out);
    }
    if (Keypair* current = target->keypairs.current()) {
        current->sending_counter = std::max(current->sending_counter, activity.sending_counter);
    }
    if (activity.authenticated_received) {
        on_authenticated_packet_received(*target, now);
        keep_key_fresh_after_receiving(*target, now, wall, out);
    }
    if (activity.data_received) {
        on_data_received(*target, now);
    }
    if (activity.authenticated_sent) {
        on_authenticated_packet_sent(*target, now);
    }
    if (activity.data_sent) {
        on_data_sent(*target, now);
        if (Keypair* current = target->keypairs.current()) {
            keep_key_fresh_after_sending(*target, *current, now, wall, out);
        }
    }
    return out;
}

}  // namespace meshgate::control
