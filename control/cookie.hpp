// MAC1, MAC2 and cookie replies (whitepaper §5.4.4, §5.4.7): WireGuard's defence against
// handshake floods. Under load a responder answers a handshake without a valid mac2 with a
// cookie reply instead of doing any Diffie-Hellman; the initiator then proves it can receive
// at its address by sending the cookie back as the key of mac2.
//
// Control thread only.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "control/endpoint.hpp"
#include "control/messages.hpp"
#include "control/protocol_config.hpp"
#include "crypto/blake2s.hpp"
#include "crypto/keys.hpp"

namespace meshgate::control {

using Timestamp = Duration;  // monotonic time since an arbitrary origin, from the caller

enum class MacCheck : std::uint8_t { ok, bad_mac1, needs_cookie };

// The responder's side: keyed by our own public key.
class CookieChecker {
  public:
    explicit CookieChecker(const crypto::PublicKey& our_public_key);

    // mac1 always; mac2 only when `under_load` (and then a missing or wrong mac2 asks for a
    // cookie reply). `message` is a whole initiation or response.
    MacCheck check(std::span<const std::uint8_t> message, const Endpoint& source, bool under_load,
                   Timestamp now, const ProtocolConfig& config);

    // The cookie reply to `message` (an initiation or response from `source`).
    CookieReply make_reply(std::span<const std::uint8_t> message, std::uint32_t sender_index,
                           const Endpoint& source, Timestamp now, const ProtocolConfig& config);

  private:
    crypto::Mac cookie_for(const Endpoint& source, Timestamp now, const ProtocolConfig& config);

    crypto::MacKey mac1_;
    crypto::Hash cookie_encryption_key_{};
    crypto::MacKey secret_;  // cookie = MAC(secret, source); random, replaced every 120 s
    Timestamp secret_born_{};
    bool secret_valid_ = false;
};

// The initiator's side, one per peer: keyed by the peer's public key.
class CookieMaker {
  public:
    explicit CookieMaker(const crypto::PublicKey& peer_public_key);

    // Writes mac1 and, while we hold a fresh cookie, mac2 into `message`.
    void add_macs(std::span<std::uint8_t> message, Timestamp now, const ProtocolConfig& config);

    // Decrypts and stores the cookie; false if it does not authenticate against the mac1 we
    // last sent.
    bool consume_reply(const CookieReply& reply, Timestamp now);

    bool has_cookie(Timestamp now, const ProtocolConfig& config) const;

  private:
    crypto::MacKey mac1_;
    crypto::Hash cookie_decryption_key_{};
    crypto::Mac last_mac1_sent_{};
    bool have_sent_mac1_ = false;
    crypto::Mac cookie_{};
    Timestamp cookie_born_{};
    bool cookie_valid_ = false;
};

}  // namespace meshgate::control
