#include "control/noise.hpp"

#include <cstring>
#include <string_view>

#include "crypto/aead.hpp"
#include "crypto/blake2s.hpp"

namespace meshgate::control::noise {
namespace {

constexpr std::string_view construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
constexpr std::string_view identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";

std::span<const std::uint8_t> bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// C0 = HASH(CONSTRUCTION) and H0 = HASH(C0 || IDENTIFIER): the same for every handshake.
struct InitialChain {
    crypto::Hash chaining_key{};
    crypto::Hash hash{};
    InitialChain() {
        crypto::hash(chaining_key, bytes(construction));
        crypto::hash(hash, chaining_key, bytes(identifier));
    }
};

const InitialChain& initial() {
    static const InitialChain chain;
    return chain;
}

void mix_hash(crypto::Hash& hash, std::span<const std::uint8_t> data) {
    crypto::Hash previous = hash;
    crypto::hash(hash, previous, data);
}

void mix_key(SymmetricKey& chaining_key, std::span<const std::uint8_t> input) {
    SymmetricKey next;
    crypto::kdf1(next, chaining_key.span(), input);
    chaining_key = next;
}

// DH(private, public): taken from `given` when the caller batched it, else computed now.
// False when the result is all zeros.
bool shared_secret(crypto::SharedSecret& out, const PrecomputedDh* given,
                   const PrivateKey& private_key, const PublicKey& public_key) {
    if (given == nullptr) {
        return crypto::dh(out, private_key, public_key);
    }
    out = given->secret;
    return given->valid;
}

// (C, k) = KDF2(C, DH(private, public)). False when the DH result is all zeros.
bool mix_dh(SymmetricKey& chaining_key, SymmetricKey& key, const PrivateKey& private_key,
            const PublicKey& public_key, const PrecomputedDh* given = nullptr) {
    crypto::SharedSecret shared;
    if (!shared_secret(shared, given, private_key, public_key)) {
        return false;
    }
    SymmetricKey next;
    crypto::kdf2(next, key, chaining_key.span(), shared.span());
    chaining_key = next;
    return true;
}

// C = KDF1(C, DH(private, public)).
bool mix_dh_only(SymmetricKey& chaining_key, const PrivateKey& private_key,
                 const PublicKey& public_key, const PrecomputedDh* given = nullptr) {
    crypto::SharedSecret shared;
    if (!shared_secret(shared, given, private_key, public_key)) {
        return false;
    }
    mix_key(chaining_key, shared.span());
    return true;
}

void start_chain(SymmetricKey& chaining_key, crypto::Hash& hash, const crypto::Hash& initial_hash) {
    chaining_key = SymmetricKey(std::span<const std::uint8_t, 32>(initial().chaining_key));
    hash = initial_hash;
}

// (C, τ, k) = KDF3(C, Q); H = HASH(H || τ). The psk step of IKpsk2.
void mix_preshared(SymmetricKey& chaining_key, crypto::Hash& hash, SymmetricKey& key,
                   const PresharedKey& preshared) {
    SymmetricKey next, tau;
    crypto::kdf3(next, tau, key, chaining_key.span(), preshared.span());
    chaining_key = next;
    mix_hash(hash, tau.span());
}

}  // namespace

LocalIdentity::LocalIdentity(const PrivateKey& key)
    : private_key(key), public_key(crypto::derive_public_key(key)) {
    crypto::hash(initial_hash_for_us, initial().hash, public_key);
}

RemoteIdentity::RemoteIdentity(const LocalIdentity& local, const PublicKey& remote,
                               const PresharedKey& preshared)
    : public_key(remote), preshared_key(preshared) {
    static_static_valid = crypto::dh(static_static, local.private_key, remote);
    crypto::hash(initial_hash_for_them, initial().hash, remote);
}

void Handshake::clear() {
    state = HandshakeState::zeroed;
    ephemeral_private.clear();
    remote_ephemeral = {};
    crypto::wipe(hash.data(), hash.size());
    chaining_key.clear();
    local_index = 0;
    remote_index = 0;
}

bool create_initiation(Initiation& out, Handshake& handshake, const LocalIdentity& local,
                       const RemoteIdentity& remote, std::uint32_t local_index,
                       const crypto::Tai64n& now) {
    if (!remote.static_static_valid) {
        return false;
    }
    Handshake next;
    start_chain(next.chaining_key, next.hash, remote.initial_hash_for_them);
    std::memset(&out, 0, sizeof(out));
    out.type = static_cast<std::uint32_t>(MessageType::initiation);
    out.sender_index = local_index;

    // e
    next.ephemeral_private = crypto::generate_private_key();
    PublicKey ephemeral = crypto::derive_public_key(next.ephemeral_private);
    std::memcpy(out.unencrypted_ephemeral, ephemeral.data(), key_bytes);
    mix_hash(next.hash, ephemeral);
    mix_key(next.chaining_key, ephemeral);

    // es
    SymmetricKey key;
    if (!mix_dh(next.chaining_key, key, next.ephemeral_private, remote.public_key)) {
        return false;
    }
    // s
    crypto::aead_seal(out.encrypted_static, key, 0, local.public_key, next.hash);
    mix_hash(next.hash, out.encrypted_static);

    // ss (precomputed)
    SymmetricKey chaining;
    crypto::kdf2(chaining, key, next.chaining_key.span(), remote.static_static.span());
    next.chaining_key = chaining;
    // {t}
    crypto::aead_seal(out.encrypted_timestamp, key, 0, now, next.hash);
    mix_hash(next.hash, out.encrypted_timestamp);

    next.local_index = local_index;
    next.state = HandshakeState::created_initiation;
    handshake = next;
    return true;
}

std::optional<InitiationProgress> open_initiation_static(const Initiation& in,
                                                         const LocalIdentity& local,
                                                         const PrecomputedDh* es) {
    InitiationProgress progress;
    start_chain(progress.chaining_key, progress.hash, local.initial_hash_for_us);
    std::memcpy(progress.ephemeral.data(), in.unencrypted_ephemeral, key_bytes);
    // e
    mix_hash(progress.hash, progress.ephemeral);
    mix_key(progress.chaining_key, progress.ephemeral);
    // es
    SymmetricKey key;
    if (!mix_dh(progress.chaining_key, key, local.private_key, progress.ephemeral, es)) {
        return std::nullopt;
    }
    // s
    if (!crypto::aead_open(progress.initiator_static, key, 0, in.encrypted_static, progress.hash)) {
        return std::nullopt;
    }
    mix_hash(progress.hash, in.encrypted_static);
    return progress;
}

std::optional<crypto::Tai64n> open_initiation_timestamp(const Initiation& in,
                                                        InitiationProgress& progress,
                                                        const RemoteIdentity& remote) {
    if (!remote.static_static_valid) {
        return std::nullopt;
    }
    // ss
    SymmetricKey chaining, key;
    crypto::kdf2(chaining, key, progress.chaining_key.span(), remote.static_static.span());
    // {t}
    crypto::Tai64n timestamp{};
    if (!crypto::aead_open(timestamp, key, 0, in.encrypted_timestamp, progress.hash)) {
        return std::nullopt;
    }
    progress.chaining_key = chaining;
    mix_hash(progress.hash, in.encrypted_timestamp);
    return timestamp;
}

void accept_initiation(const Initiation& in, InitiationProgress&& progress, Handshake& handshake) {
    handshake.clear();
    handshake.hash = progress.hash;
    handshake.chaining_key = progress.chaining_key;
    handshake.remote_ephemeral = progress.ephemeral;
    handshake.remote_index = in.sender_index;
    handshake.state = HandshakeState::consumed_initiation;
    crypto::wipe(progress.hash.data(), progress.hash.size());
    progress.chaining_key.clear();
}

bool create_response(Response& out, Handshake& handshake, const RemoteIdentity& remote,
                     std::uint32_t local_index, const ResponderEphemeral* precomputed) {
    if (handshake.state != HandshakeState::consumed_initiation) {
        return false;
    }
    Handshake next = handshake;
    std::memset(&out, 0, sizeof(out));
    out.type = static_cast<std::uint32_t>(MessageType::response);
    out.sender_index = local_index;
    out.receiver_index = handshake.remote_index;

    // e
    PublicKey ephemeral;
    if (precomputed != nullptr) {
        next.ephemeral_private = precomputed->private_key;
        ephemeral = precomputed->public_key;
    } else {
        next.ephemeral_private = crypto::generate_private_key();
        ephemeral = crypto::derive_public_key(next.ephemeral_private);
    }
    std::memcpy(out.unencrypted_ephemeral, ephemeral.data(), key_bytes);
    mix_hash(next.hash, ephemeral);
    mix_key(next.chaining_key, ephemeral);
    // ee
    if (!mix_dh_only(next.chaining_key, next.ephemeral_private, next.remote_ephemeral,
                     precomputed != nullptr ? &precomputed->ephemeral_ephemeral : nullptr)) {
        return false;
    }
    // se
    if (!mix_dh_only(next.chaining_key, next.ephemeral_private, remote.public_key,
                     precomputed != nullptr ? &precomputed->ephemeral_static : nullptr)) {
        return false;
    }
    // psk
    SymmetricKey key;
    mix_preshared(next.chaining_key, next.hash, key, remote.preshared_key);
    // {}
    crypto::aead_seal(out.encrypted_nothing, key, 0, {}, next.hash);
    mix_hash(next.hash, out.encrypted_nothing);

    next.local_index = local_index;
    next.state = HandshakeState::created_response;
    handshake = next;
    return true;
}

bool consume_response(const Response& in, Handshake& handshake, const LocalIdentity& local,
                      const RemoteIdentity& remote) {
    if (handshake.state != HandshakeState::created_initiation ||
        in.receiver_index != handshake.local_index) {
        return false;
    }
    // Work on a copy: a forged response must leave the initiation usable for the real one.
    Handshake next = handshake;
    PublicKey ephemeral;
    std::memcpy(ephemeral.data(), in.unencrypted_ephemeral, key_bytes);
    // e
    mix_hash(next.hash, ephemeral);
    mix_key(next.chaining_key, ephemeral);
    // ee
    if (!mix_dh_only(next.chaining_key, next.ephemeral_private, ephemeral)) {
        return false;
    }
    // se
    if (!mix_dh_only(next.chaining_key, local.private_key, ephemeral)) {
        return false;
    }
    // psk
    SymmetricKey key;
    mix_preshared(next.chaining_key, next.hash, key, remote.preshared_key);
    // {}
    std::uint8_t nothing[1];
    if (!crypto::aead_open({nothing, 0}, key, 0, in.encrypted_nothing, next.hash)) {
        return false;
    }
    mix_hash(next.hash, in.encrypted_nothing);

    next.remote_ephemeral = ephemeral;
    next.remote_index = in.sender_index;
    next.state = HandshakeState::consumed_response;
    handshake = next;
    return true;
}

std::optional<SessionKeys> begin_session(Handshake& handshake) {
    const bool initiator = handshake.state == HandshakeState::consumed_response;
    if (!initiator && handshake.state != HandshakeState::created_response) {
        return std::nullopt;
    }
    SessionKeys keys;
    SymmetricKey first, second;
    crypto::kdf2(first, second, handshake.chaining_key.span(), {});
    // The initiator sends with the first key; the responder receives with it.
    keys.sending = initiator ? first : second;
    keys.receiving = initiator ? second : first;
    keys.local_index = handshake.local_index;
    keys.remote_index = handshake.remote_index;
    keys.initiator = initiator;
    handshake.clear();
    return keys;
}

}  // namespace meshgate::control::noise
