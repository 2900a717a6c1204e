// What the engine asks its caller to do. The engine never does I/O; it returns a list of
// these, in order, and the caller (a UDP socket loop in tests and interop, the control lcore
// in the gateway) carries them out.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "control/endpoint.hpp"
#include "control/index_table.hpp"
#include "control/keypairs.hpp"
#include "control/protocol_config.hpp"
#include "crypto/keys.hpp"

namespace meshgate::control {

// X(name, help): why the engine refused a message. Named after the message's fault, except
// the last, which is ours.
#define MESHGATE_ENGINE_DROPS(X)                                                          \
    X(bad_length, "message shorter or longer than its type allows")                       \
    X(unknown_type, "not a WireGuard message type")                                       \
    X(bad_mac1, "mac1 does not match our public key")                                     \
    X(cookie_required, "under load and mac2 missing or wrong: answered with a cookie")    \
    X(rate_limited, "under load and the source exceeded its handshake rate")              \
    X(bad_initiation, "initiation did not decrypt")                                       \
    X(unknown_peer, "initiation from a static key that is not configured")                \
    X(stale_timestamp, "initiation timestamp not newer than the peer's last one")         \
    X(initiation_flood, "initiations from one peer faster than allowed")                  \
    X(unknown_index, "receiver index names no handshake or keypair of ours")              \
    X(bad_response, "response did not authenticate")                                      \
    X(bad_cookie_reply, "cookie reply did not authenticate")                              \
    X(decrypt_failed, "transport data did not authenticate")                              \
    X(replayed_counter, "transport counter seen before or behind the window")             \
    X(keypair_expired, "transport data on a keypair past REJECT_AFTER_TIME or _MESSAGES") \
    X(staged_overflow, "queued packet for a peer without session pushed out by a newer")  \
    X(index_table_full, "handshake not answered or not sent: no free receiver index")

enum class EngineDrop : std::uint8_t {
#define MESHGATE_ENGINE_DROP_ENUM(name, help) name,
    MESHGATE_ENGINE_DROPS(MESHGATE_ENGINE_DROP_ENUM)
#undef MESHGATE_ENGINE_DROP_ENUM
};

inline constexpr std::size_t engine_drop_count = 0
#define MESHGATE_ENGINE_DROP_COUNT(name, help) +1
    MESHGATE_ENGINE_DROPS(MESHGATE_ENGINE_DROP_COUNT)
#undef MESHGATE_ENGINE_DROP_COUNT
    ;

std::string_view engine_drop_name(EngineDrop reason);

struct Action {
    enum class Kind : std::uint8_t {
        send_to,          // bytes -> endpoint (a handshake message or transport data)
        transmit,         // transport_in_dataplane: seal `bytes` (a plaintext packet, empty
                          // for a keepalive) with the peer's current keypair and send it
        deliver,          // bytes = a decrypted inner packet from peer
        install_keypair,  // the data plane should accept `local_index` (and maybe send with it)
        retire_keypair,   // the data plane must forget `local_index`
        drop,             // a message was refused for `reason`
    };
    Kind kind;
    PeerId peer = 0;
    Endpoint endpoint;
    std::vector<std::uint8_t> bytes;
    EngineDrop reason = EngineDrop::bad_length;
    // install_keypair
    std::uint32_t local_index = 0;
    std::uint32_t remote_index = 0;
    crypto::SymmetricKey sending_key;
    crypto::SymmetricKey receiving_key;
    bool initiator = false;
    Timestamp birth{};
};

using Actions = std::vector<Action>;

}  // namespace meshgate::control
