// Noise_IKpsk2 as WireGuard uses it (whitepaper §5.4.2-§5.4.5): creating and consuming the
// initiation and the response, and deriving the transport keys (begin_session). MACs and
// cookies are cookie.hpp's job; indexes, peers and timing are the engine's.
//
// Control thread only. Every secret lives in self-wiping types; a message that fails to
// authenticate leaves the handshake state exactly as it was.
#pragma once

#include <cstdint>
#include <optional>

#include "control/messages.hpp"
#include "crypto/keys.hpp"
#include "crypto/tai64n.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::control::noise {

using crypto::PresharedKey;
using crypto::PrivateKey;
using crypto::PublicKey;
using crypto::SymmetricKey;

// This interface's static key and what can be computed from it once.
struct LocalIdentity {
    PrivateKey private_key;
    PublicKey public_key{};
    crypto::Hash initial_hash_for_us{};  // HASH(HASH(C0 || identifier) || our public key)

    explicit LocalIdentity(const PrivateKey& key);
};

// A peer's static key and what both sides can precompute for it.
struct RemoteIdentity {
    PublicKey public_key{};
    PresharedKey preshared_key;            // all zeros when none is configured
    crypto::SharedSecret static_static;    // DH(our static, their static): the "ss" term
    crypto::Hash initial_hash_for_them{};  // HASH(HASH(C0 || identifier) || their public key)
    bool static_static_valid = false;      // false: their key is low-order; never handshake

    RemoteIdentity(const LocalIdentity& local, const PublicKey& remote,
                   const PresharedKey& preshared_key);
};

enum class HandshakeState : std::uint8_t {
    zeroed,
    created_initiation,
    consumed_initiation,
    created_response,
    consumed_response,
};

// One peer's handshake in progress (kernel: noise_handshake).
struct Handshake {
    HandshakeState state = HandshakeState::zeroed;
    PrivateKey ephemeral_private;
    PublicKey remote_ephemeral{};
    crypto::Hash hash{};
    SymmetricKey chaining_key;
    std::uint32_t local_index = 0;
    std::uint32_t remote_index = 0;

    void clear();
};

// Transport keys as begin_session derives them.
struct SessionKeys {
    SymmetricKey sending;
    SymmetricKey receiving;
    std::uint32_t local_index = 0;
    std::uint32_t remote_index = 0;
    bool initiator = false;
};

// A Diffie-Hellman term computed ahead of time, in one batch with other handshakes' (the
// engine's on_datagrams): exactly what crypto::dh would give, `valid` false for all zeros.
struct PrecomputedDh {
    crypto::SharedSecret secret;
    bool valid = false;
};

// The responder's ephemeral key and the two DH terms it takes part in, batched likewise.
struct ResponderEphemeral {
    PrivateKey private_key;
    PublicKey public_key{};
    PrecomputedDh ephemeral_ephemeral;  // "ee": DH(our ephemeral, their ephemeral)
    PrecomputedDh ephemeral_static;     // "se": DH(our ephemeral, their static)
};

// --- initiator ---------------------------------------------------------------------------
// Fills `out` (all but the MACs) and moves `handshake` to created_initiation.
bool create_initiation(Initiation& out, Handshake& handshake, const LocalIdentity& local,
                       const RemoteIdentity& remote, std::uint32_t local_index,
                       const crypto::Tai64n& now);

// Consumes a response to our initiation; on success the handshake is consumed_response.
bool consume_response(const Response& in, Handshake& handshake, const LocalIdentity& local,
                      const RemoteIdentity& remote);

// --- responder ---------------------------------------------------------------------------
// The first half of consuming an initiation: decrypts the initiator's static key, so the
// caller can find the peer. Nothing is stored anywhere yet.
struct InitiationProgress {
    PublicKey initiator_static{};
    crypto::Hash hash{};
    SymmetricKey chaining_key;
    PublicKey ephemeral{};
};
// `es`, when given, is DH(our static, in.unencrypted_ephemeral) computed by the caller.
std::optional<InitiationProgress> open_initiation_static(const Initiation& in,
                                                         const LocalIdentity& local,
                                                         const PrecomputedDh* es = nullptr);

// The second half, once the peer is known: checks the timestamp's encryption and returns the
// timestamp; the caller decides freshness and then calls accept_initiation.
std::optional<crypto::Tai64n> open_initiation_timestamp(const Initiation& in,
                                                        InitiationProgress& progress,
                                                        const RemoteIdentity& remote);
void accept_initiation(const Initiation& in, InitiationProgress&& progress, Handshake& handshake);

// Fills `out` (all but the MACs); the handshake moves to created_response. Without
// `ephemeral` a fresh ephemeral key and its DH terms are computed here.
bool create_response(Response& out, Handshake& handshake, const RemoteIdentity& remote,
                     std::uint32_t local_index, const ResponderEphemeral* ephemeral = nullptr);

// --- both --------------------------------------------------------------------------------
// Derives the transport keys from a completed handshake (created_response for the
// responder, consumed_response for the initiator) and wipes the handshake.
std::optional<SessionKeys> begin_session(Handshake& handshake);

}  // namespace meshgate::control::noise
