// Engine: the timers of whitepaper §6, as event hooks that arm or cancel deadlines and a
// tick() that fires the ones that are due. Every constant comes from ProtocolConfig so tests
// can shorten them.
#include "control/engine.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::control {

Duration Engine::jitter() {
    if (config_.rekey_timeout_jitter_max.count() <= 0) {
        return Duration{0};
    }
    std::uint64_t random;
    crypto::random_bytes(&random, sizeof(random));
    return Duration{static_cast<std::int64_t>(
        random % static_cast<std::uint64_t>(config_.rekey_timeout_jitter_max.count()))};
}

void Engine::on_handshake_initiated(Peer& peer, Timestamp now) {
    if (!peer.timers.handshake_attempt_started) {
        peer.timers.handshake_attempt_started = now;
    }
    peer.timers.retransmit_handshake = now + config_.rekey_timeout + jitter();
}

void Engine::on_handshake_complete(Peer& peer, Timestamp now, WallClock wall) {
    peer.timers.retransmit_handshake.reset();
    peer.timers.handshake_attempt_started.reset();
    peer.last_handshake = wall;
    (void)now;
}

void Engine::on_session_derived(Peer& peer, Timestamp now) {
    peer.timers.zero_key_material = now + config_.wipe_after();
}

void Engine::on_authenticated_packet_received(Peer& peer, Timestamp now) {
    peer.timers.new_handshake.reset();
    if (peer.persistent_keepalive_seconds != 0) {
        peer.timers.persistent_keepalive =
            now + Duration{std::chrono::seconds(peer.persistent_keepalive_seconds)};
    }
}

void Engine::on_authenticated_packet_sent(Peer& peer, Timestamp now) {
    peer.timers.send_keepalive.reset();
    if (peer.persistent_keepalive_seconds != 0) {
        peer.timers.persistent_keepalive =
            now + Duration{std::chrono::seconds(peer.persistent_keepalive_seconds)};
    }
}

// Data arrived: if we send nothing back within KEEPALIVE_TIMEOUT, a keepalive will.
void Engine::on_data_received(Peer& peer, Timestamp now) {
    if (!peer.timers.send_keepalive) {
        peer.timers.send_keepalive = now + config_.keepalive_timeout;
    }
}

// Data sent: if nothing comes back within KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, the session is
// probably dead on the other side; start a new handshake then.
void Engine::on_data_sent(Peer& peer, Timestamp now) {
    if (!peer.timers.new_handshake) {
        peer.timers.new_handshake =
            now + config_.keepalive_timeout + config_.rekey_timeout + jitter();
    }
}

Actions Engine::tick(Timestamp now, WallClock wall) {
    Actions out;
    for (auto& [id, peer] : peers_) {
        run_timers(*peer, now, wall, out);
    }
    if (now - last_collect_ > 1s) {
        rate_limiter_.collect(now);
        last_collect_ = now;
    }
    return out;
}

void Engine::run_timers(Peer& peer, Timestamp now, WallClock wall, Actions& out) {
    PeerTimers& timers = peer.timers;
    auto due = [now](const std::optional<Timestamp>& deadline) {
        return deadline && now >= *deadline;
    };
    if (due(timers.retransmit_handshake)) {
        timers.retransmit_handshake.reset();
        if (timers.handshake_attempt_started &&
            now - *timers.handshake_attempt_started >= config_.rekey_attempt_time) {
            // Give up (§6.4): forget the packets that waited, and make sure the keys go too.
            timers.handshake_attempt_started.reset();
            timers.send_keepalive.reset();
            peer.staged.clear();
            if (!timers.zero_key_material) {
                timers.zero_key_material = now + config_.wipe_after();
            }
        } else {
            send_initiation(peer, now, wall, true, out);
        }
    }
    if (due(timers.send_keepalive)) {
        timers.send_keepalive.reset();
        send_data(peer, {}, now, wall, out);
    }
    if (due(timers.new_handshake)) {
        timers.new_handshake.reset();
        send_initiation(peer, now, wall, false, out);
    }
    if (due(timers.zero_key_material)) {
        // §6.5: nothing for 3 x REJECT_AFTER_TIME, so no key material may remain.
        timers.zero_key_material.reset();
        if (peer.handshake.local_index != 0) {
            indexes_.release(peer.handshake.local_index);
        }
        peer.handshake.clear();
        retire(peer, peer.keypairs.clear(), out);
    }
    if (due(timers.persistent_keepalive)) {
        timers.persistent_keepalive.reset();
        send_data(peer, {}, now, wall, out);
    }
}

}  // namespace meshgate::control
