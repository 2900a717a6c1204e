// Engine: dispatch by message type, and the handshake messages (whitepaper §5.4.2-§5.4.7).
// Transport data is in transport.cpp, timers in timers.cpp.
#include "control/engine.hpp"

#include <cstring>

#include "crypto/secure.hpp"

namespace meshgate::control {
namespace {

template <typename Message>
Message read_message(std::span<const std::uint8_t> bytes) {
    Message message;
    std::memcpy(&message, bytes.data(), sizeof(Message));
    return message;
}

template <typename Message>
std::vector<std::uint8_t> bytes_of(const Message& message) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(&message);
    return {data, data + sizeof(Message)};
}

Action send_action(PeerId peer, const Endpoint& to, std::vector<std::uint8_t> bytes) {
    Action action{};
    action.kind = Action::Kind::send_to;
    action.peer = peer;
    action.endpoint = to;
    action.bytes = std::move(bytes);
    return action;
}

bool is_initiation(std::span<const std::uint8_t> datagram) {
    std::uint32_t type = 0;
    if (datagram.size() != sizeof(Initiation)) {
        return false;
    }
    std::memcpy(&type, datagram.data(), 4);
    return static_cast<MessageType>(type) == MessageType::initiation;
}

// An initiation that passed the cheap checks in on_datagrams, carried through its batched
// Diffie-Hellman passes.
struct AdmittedInitiation {
    Initiation message;
    Endpoint from;
    crypto::PublicKey their_ephemeral{};
    noise::PrecomputedDh es;
    noise::ResponderEphemeral ephemeral;
    Peer* sender = nullptr;
};

}  // namespace

std::string_view engine_drop_name(EngineDrop reason) {
    static constexpr std::string_view names[] = {
#define MESHGATE_ENGINE_DROP_NAME(name, help) #name,
        MESHGATE_ENGINE_DROPS(MESHGATE_ENGINE_DROP_NAME)
#undef MESHGATE_ENGINE_DROP_NAME
    };
    return names[static_cast<std::size_t>(reason)];
}

Engine::Engine(const crypto::PrivateKey& private_key, const ProtocolConfig& config)
    : config_(config),
      local_(private_key),
      cookie_checker_(local_.public_key),
      rate_limiter_(config),
      indexes_(config.index_layout),
      cpu_(crypto::CpuFeatures::detect()) {}

std::optional<PeerId> Engine::add_peer(const PeerOptions& options) {
    if (peers_by_key_.contains(options.public_key) || options.public_key == local_.public_key) {
        return std::nullopt;
    }
    const PeerId id = next_peer_id_++;
    auto peer = std::make_unique<Peer>(id, local_, options.public_key, options.preshared_key);
    if (!peer->identity.static_static_valid) {
        return std::nullopt;  // a low-order public key: no handshake could ever succeed
    }
    peer->endpoint = options.endpoint;
    peer->persistent_keepalive_seconds = options.persistent_keepalive_seconds;
    peer->owner = options.owner;
    peers_by_key_.emplace(options.public_key, id);
    peers_.emplace(id, std::move(peer));
    return id;
}

Actions Engine::remove_peer(PeerId id) {
    Actions out;
    Peer* found = peer(id);
    if (found == nullptr) {
        return out;
    }
    if (found->handshake.local_index != 0) {
        indexes_.release(found->handshake.local_index);
    }
    retire(*found, found->keypairs.clear(), out);
    peers_by_key_.erase(found->identity.public_key);
    peers_.erase(id);
    return out;
}

Peer* Engine::peer(PeerId id) {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : it->second.get();
}

Peer* Engine::peer_by_key(const crypto::PublicKey& key) {
    auto it = peers_by_key_.find(key);
    return it == peers_by_key_.end() ? nullptr : peer(it->second);
}

void Engine::count(EngineDrop reason, Actions& out, PeerId peer) {
    drops_[static_cast<std::size_t>(reason)]++;
    Action action{};
    action.kind = Action::Kind::drop;
    action.reason = reason;
    action.peer = peer;
    out.push_back(std::move(action));
}

Actions Engine::on_datagram(std::span<const std::uint8_t> datagram, const Endpoint& from,
                            Timestamp now, WallClock wall, bool under_load) {
    Actions out;
    dispatch(datagram, from, now, wall, under_load, out);
    return out;
}

void Engine::dispatch(std::span<const std::uint8_t> datagram, const Endpoint& from, Timestamp now,
                      WallClock wall, bool under_load, Actions& out) {
    if (datagram.size() < 4) {
        count(EngineDrop::bad_length, out);
        return;
    }
    std::uint32_t type;
    std::memcpy(&type, datagram.data(), 4);  // little-endian; reserved bytes must be zero
    switch (static_cast<MessageType>(type)) {
        case MessageType::initiation:
            if (datagram.size() != sizeof(Initiation)) {
                count(EngineDrop::bad_length, out);
            } else {
                on_initiation(datagram, from, now, wall, under_load, out);
            }
            break;
        case MessageType::response:
            if (datagram.size() != sizeof(Response)) {
                count(EngineDrop::bad_length, out);
            } else {
                on_response(datagram, from, now, wall, under_load, out);
            }
            break;
        case MessageType::cookie_reply:
            if (datagram.size() != sizeof(CookieReply)) {
                count(EngineDrop::bad_length, out);
            } else {
                on_cookie_reply(datagram, now, out);
            }
            break;
        case MessageType::transport_data:
            if (datagram.size() < transport_minimum) {
                count(EngineDrop::bad_length, out);
            } else {
                on_data(datagram, from, now, wall, out);
            }
            break;
        default:
            count(EngineDrop::unknown_type, out);
    }
}

Actions Engine::on_datagrams(std::span<const Datagram> datagrams, Timestamp now, WallClock wall,
                             bool under_load) {
    Actions out;
    // Pass 1, in arrival order: everything but initiations is handled at once; initiations
    // go through the cheap checks (MACs, cookies, rate limit) and wait.
    std::vector<AdmittedInitiation> admitted;
    for (const Datagram& datagram : datagrams) {
        if (!is_initiation(datagram.bytes)) {
            dispatch(datagram.bytes, datagram.from, now, wall, under_load, out);
            continue;
        }
        AdmittedInitiation initiation;
        initiation.message = read_message<Initiation>(datagram.bytes);
        initiation.from = datagram.from;
        if (admit_handshake(datagram.bytes, initiation.message.sender_index, datagram.from, now,
                            under_load, out)) {
            admitted.push_back(std::move(initiation));
        }
    }
    if (admitted.empty()) {
        return out;
    }
    // Pass 2: "es" for all of them together, and only that: nothing more is spent on an
    // initiation until it has authenticated.
    std::vector<crypto::DhJob> jobs;
    for (AdmittedInitiation& initiation : admitted) {
        std::memcpy(initiation.their_ephemeral.data(), initiation.message.unencrypted_ephemeral,
                    key_bytes);
        jobs.push_back(crypto::DhJob::shared_secret(initiation.es.secret, local_.private_key,
                                                    initiation.their_ephemeral));
    }
    crypto::dh_batch(jobs, cpu_);
    for (std::size_t i = 0; i < admitted.size(); ++i) {
        AdmittedInitiation& initiation = admitted[i];
        initiation.es.valid = jobs[i].ok;
        initiation.sender =
            consume_initiation(initiation.message, initiation.from, now, &initiation.es, out);
    }
    // Pass 3: each response's ephemeral key with its "ee" and "se" terms, together.
    jobs.clear();
    for (AdmittedInitiation& initiation : admitted) {
        if (initiation.sender == nullptr) {
            continue;
        }
        noise::ResponderEphemeral& ephemeral = initiation.ephemeral;
        ephemeral.private_key = crypto::generate_private_key();
        jobs.push_back(crypto::DhJob::public_key(ephemeral.public_key, ephemeral.private_key));
        jobs.push_back(crypto::DhJob::shared_secret(ephemeral.ephemeral_ephemeral.secret,
                                                    ephemeral.private_key,
                                                    initiation.their_ephemeral));
        jobs.push_back(crypto::DhJob::shared_secret(ephemeral.ephemeral_static.secret,
                                                    ephemeral.private_key,
                                                    initiation.sender->identity.public_key));
    }
    crypto::dh_batch(jobs, cpu_);
    std::size_t job = 0;
    for (AdmittedInitiation& initiation : admitted) {
        if (initiation.sender != nullptr) {
            initiation.ephemeral.ephemeral_ephemeral.valid = jobs[job + 1].ok;
            initiation.ephemeral.ephemeral_static.valid = jobs[job + 2].ok;
            job += 3;
        }
    }
    for (AdmittedInitiation& initiation : admitted) {
        if (initiation.sender != nullptr) {
            respond(*initiation.sender, initiation.from, now, &initiation.ephemeral, out);
        }
    }
    return out;
}

// MAC1 always; under load MAC2 (else a cookie reply) and the per-source rate limit.
bool Engine::admit_handshake(std::span<const std::uint8_t> message, std::uint32_t sender_index,
                             const Endpoint& from, Timestamp now, bool under_load, Actions& out) {
    switch (cookie_checker_.check(message, from, under_load, now, config_)) {
        case MacCheck::bad_mac1:
            count(EngineDrop::bad_mac1, out);
            return false;
        case MacCheck::needs_cookie: {
            CookieReply reply =
                cookie_checker_.make_reply(message, sender_index, from, now, config_);
            out.push_back(send_action(0, from, bytes_of(reply)));
            count(EngineDrop::cookie_required, out);
            return false;
        }
        case MacCheck::ok:
            break;
    }
    if (under_load && !rate_limiter_.allow(from, now)) {
        count(EngineDrop::rate_limited, out);
        return false;
    }
    return true;
}

void Engine::on_initiation(std::span<const std::uint8_t> message, const Endpoint& from,
                           Timestamp now, WallClock wall, bool under_load, Actions& out) {
    const Initiation initiation = read_message<Initiation>(message);
    if (!admit_handshake(message, initiation.sender_index, from, now, under_load, out)) {
        return;
    }
    if (Peer* sender = consume_initiation(initiation, from, now, nullptr, out)) {
        respond(*sender, from, now, nullptr, out);
    }
    (void)wall;
}

Peer* Engine::consume_initiation(const Initiation& initiation, const Endpoint& from, Timestamp now,
                                 const noise::PrecomputedDh* es, Actions& out) {
    auto progress = noise::open_initiation_static(initiation, local_, es);
    if (!progress) {
        count(EngineDrop::bad_initiation, out);
        return nullptr;
    }
    Peer* sender = peer_by_key(progress->initiator_static);
    if (sender == nullptr) {
        count(EngineDrop::unknown_peer, out);
        return nullptr;
    }
    auto timestamp = noise::open_initiation_timestamp(initiation, *progress, sender->identity);
    if (!timestamp) {
        count(EngineDrop::bad_initiation, out, sender->id);
        return nullptr;
    }
    // Replay: a captured initiation can never be consumed twice (whitepaper §5.1).
    if (sender->latest_timestamp && !crypto::tai64n_after(*timestamp, *sender->latest_timestamp)) {
        count(EngineDrop::stale_timestamp, out, sender->id);
        return nullptr;
    }
    const Duration flood_interval = 1'000'000'000ns / config_.max_initiations_per_second;
    if (sender->last_initiation_consumed &&
        now - *sender->last_initiation_consumed < flood_interval) {
        count(EngineDrop::initiation_flood, out, sender->id);
        return nullptr;
    }
    // Authenticated: from here on the peer's state changes.
    sender->latest_timestamp = *timestamp;
    sender->last_initiation_consumed = now;
    if (sender->handshake.local_index != 0) {
        indexes_.release(sender->handshake.local_index);
    }
    noise::accept_initiation(initiation, std::move(*progress), sender->handshake);
    sender->endpoint = from;
    return sender;
}

void Engine::respond(Peer& sender, const Endpoint& from, Timestamp now,
                     const noise::ResponderEphemeral* ephemeral, Actions& out) {
    Response response;
    const std::optional<std::uint32_t> index = indexes_.allocate(sender.id, sender.owner);
    if (!index) {
        // Unreachable when the layout fits the peers (each holds at most four indexes): a
        // leak. The peer retries after REKEY_TIMEOUT; the counter tells the operator.
        count(EngineDrop::index_table_full, out, sender.id);
        sender.handshake.clear();
        return;
    }
    if (!noise::create_response(response, sender.handshake, sender.identity, *index, ephemeral)) {
        indexes_.release(*index);
        sender.handshake.clear();
        return;
    }
    auto bytes = bytes_of(response);
    sender.cookie.add_macs(bytes, now, config_);
    auto keys = noise::begin_session(sender.handshake);
    out.push_back(send_action(sender.id, from, std::move(bytes)));
    on_authenticated_packet_sent(sender, now);
    if (keys) {
        install_session(sender, std::move(*keys), now, out);
    }
}

void Engine::on_response(std::span<const std::uint8_t> message, const Endpoint& from, Timestamp now,
                         WallClock wall, bool under_load, Actions& out) {
    const Response response = read_message<Response>(message);
    if (!admit_handshake(message, response.sender_index, from, now, under_load, out)) {
        return;
    }
    const PeerId* owner = indexes_.find(response.receiver_index);
    Peer* initiator = owner != nullptr ? peer(*owner) : nullptr;
    if (initiator == nullptr || initiator->handshake.local_index != response.receiver_index ||
        initiator->handshake.state != noise::HandshakeState::created_initiation) {
        count(EngineDrop::unknown_index, out);
        return;
    }
    if (!noise::consume_response(response, initiator->handshake, local_, initiator->identity)) {
        count(EngineDrop::bad_response, out, initiator->id);
        return;
    }
    initiator->endpoint = from;
    auto keys = noise::begin_session(initiator->handshake);
    if (!keys) {
        return;
    }
    install_session(*initiator, std::move(*keys), now, out);
    on_handshake_complete(*initiator, now, wall);
    on_authenticated_packet_received(*initiator, now);
    // Confirm the session at once: staged packets if there are any, else a keepalive.
    if (initiator->staged.empty()) {
        send_data(*initiator, {}, now, wall, out);
    } else {
        send_staged(*initiator, now, wall, out);
    }
}

void Engine::on_cookie_reply(std::span<const std::uint8_t> message, Timestamp now, Actions& out) {
    const CookieReply reply = read_message<CookieReply>(message);
    const PeerId* owner = indexes_.find(reply.receiver_index);
    Peer* target = owner != nullptr ? peer(*owner) : nullptr;
    if (target == nullptr || target->handshake.local_index != reply.receiver_index) {
        count(EngineDrop::unknown_index, out);
        return;
    }
    // Never roam on a cookie reply: its source address proves nothing.
    if (!target->cookie.consume_reply(reply, now)) {
        count(EngineDrop::bad_cookie_reply, out, target->id);
    }
}

Actions Engine::initiate(PeerId id, Timestamp now, WallClock wall) {
    Actions out;
    if (Peer* target = peer(id)) {
        send_initiation(*target, now, wall, false, out);
    }
    return out;
}

void Engine::send_initiation(Peer& peer, Timestamp now, WallClock wall, bool retry, Actions& out) {
    if (!peer.endpoint) {
        return;  // nowhere to send it: we wait for the peer to reach us
    }
    // At most one initiation per REKEY_TIMEOUT, unless the retransmit timer asks for one.
    if (!retry && peer.timers.last_initiation_sent &&
        now - *peer.timers.last_initiation_sent < config_.rekey_timeout) {
        return;
    }
    if (peer.handshake.local_index != 0) {
        indexes_.release(peer.handshake.local_index);
    }
    Initiation initiation;
    const std::optional<std::uint32_t> index = indexes_.allocate(peer.id, peer.owner);
    if (!index) {
        // As in respond(): counted, and the next send or timer tries again.
        count(EngineDrop::index_table_full, out, peer.id);
        peer.handshake.clear();
        return;
    }
    if (!noise::create_initiation(initiation, peer.handshake, local_, peer.identity, *index,
                                  crypto::tai64n_from(wall))) {
        indexes_.release(*index);
        peer.handshake.clear();
        return;
    }
    auto bytes = bytes_of(initiation);
    peer.cookie.add_macs(bytes, now, config_);
    out.push_back(send_action(peer.id, *peer.endpoint, std::move(bytes)));
    peer.timers.last_initiation_sent = now;
    on_handshake_initiated(peer, now);
    on_authenticated_packet_sent(peer, now);
}

void Engine::install_session(Peer& peer, noise::SessionKeys&& keys, Timestamp now, Actions& out) {
    auto keypair = std::make_unique<Keypair>();
    keypair->sending = keys.sending;
    keypair->receiving = keys.receiving;
    keypair->local_index = keys.local_index;
    keypair->remote_index = keys.remote_index;
    keypair->birth = now;
    keypair->initiator = keys.initiator;

    Action install{};
    install.kind = Action::Kind::install_keypair;
    install.peer = peer.id;
    install.local_index = keypair->local_index;
    install.remote_index = keypair->remote_index;
    install.sending_key = keypair->sending;
    install.receiving_key = keypair->receiving;
    install.initiator = keypair->initiator;
    install.birth = now;
    out.push_back(std::move(install));

    retire(peer, peer.keypairs.add(std::move(keypair)), out);
    peer.timers.sent_lastminute_handshake = false;
    peer.counters.handshakes_completed++;
    on_session_derived(peer, now);
}

void Engine::retire(Peer& peer, std::vector<std::unique_ptr<Keypair>> retired, Actions& out) {
    for (auto& keypair : retired) {
        indexes_.release(keypair->local_index);
        Action action{};
        action.kind = Action::Kind::retire_keypair;
        action.peer = peer.id;
        action.local_index = keypair->local_index;
        out.push_back(std::move(action));
        keypair.reset();  // wipes the keys
    }
}

}  // namespace meshgate::control
