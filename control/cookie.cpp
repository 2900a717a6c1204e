#include "control/cookie.hpp"

#include <cstring>
#include <string_view>

#include "crypto/aead.hpp"
#include "crypto/blake2s.hpp"
#include "crypto/secure.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::control {
namespace {

constexpr std::string_view label_mac1 = "mac1----";
constexpr std::string_view label_cookie = "cookie--";

crypto::Hash labelled_key(std::string_view label, const crypto::PublicKey& key) {
    crypto::Hash out;
    crypto::hash(out, {reinterpret_cast<const std::uint8_t*>(label.data()), label.size()}, key);
    return out;
}

crypto::Mac mac_over(std::span<const std::uint8_t> key, std::span<const std::uint8_t> message,
                     std::size_t length) {
    crypto::Mac out;
    crypto::mac(out, key, message.first(length));
    return out;
}

crypto::Mac mac_over(const crypto::MacKey& key, std::span<const std::uint8_t> message,
                     std::size_t length) {
    crypto::Mac out;
    key.mac(out, message.first(length));
    return out;
}

crypto::MacKey labelled_mac_key(std::string_view label, const crypto::PublicKey& key) {
    crypto::Hash derived = labelled_key(label, key);
    return crypto::MacKey(derived);
}

// Handshake messages end in mac1 then mac2; everything before each is what it covers.
std::size_t mac1_at(std::span<const std::uint8_t> message) {
    return message.size() - 2 * mac_bytes;
}
std::size_t mac2_at(std::span<const std::uint8_t> message) {
    return message.size() - mac_bytes;
}

}  // namespace

CookieChecker::CookieChecker(const crypto::PublicKey& our_public_key)
    : mac1_(labelled_mac_key(label_mac1, our_public_key)),
      cookie_encryption_key_(labelled_key(label_cookie, our_public_key)) {}

// Cookie = MAC(secret, source address || port). The secret changes every
// cookie_secret_lifetime, so a cookie is only ever good for about two minutes.
crypto::Mac CookieChecker::cookie_for(const Endpoint& source, Timestamp now,
                                      const ProtocolConfig& config) {
    if (!secret_valid_ || now - secret_born_ >= config.cookie_secret_lifetime) {
        crypto::SymmetricKey secret;
        crypto::random_bytes(secret.data(), secret.size());
        secret_ = crypto::MacKey(secret.span());
        secret_born_ = now;
        secret_valid_ = true;
    }
    std::uint8_t input[18];
    const std::size_t address_length = source.is_v6 ? 16 : 4;
    std::memcpy(input, source.address.data(), address_length);
    input[address_length] = static_cast<std::uint8_t>(source.port >> 8);
    input[address_length + 1] = static_cast<std::uint8_t>(source.port);
    crypto::Mac cookie;
    secret_.mac(cookie, {input, address_length + 2});
    return cookie;
}

MacCheck CookieChecker::check(std::span<const std::uint8_t> message, const Endpoint& source,
                              bool under_load, Timestamp now, const ProtocolConfig& config) {
    const crypto::Mac expected_mac1 = mac_over(mac1_, message, mac1_at(message));
    if (!crypto::equal(expected_mac1.data(), message.data() + mac1_at(message), mac_bytes)) {
        return MacCheck::bad_mac1;
    }
    if (!under_load) {
        return MacCheck::ok;
    }
    // An initiator without a cookie sends mac2 as zeros (a flood's messages all do). A real
    // mac2 is all zeros with probability 2^-128, so no MAC is computed to reject it.
    if (crypto::is_zero(message.data() + mac2_at(message), mac_bytes)) {
        return MacCheck::needs_cookie;
    }
    const crypto::Mac cookie = cookie_for(source, now, config);
    const crypto::Mac expected_mac2 = mac_over(cookie, message, mac2_at(message));
    if (!crypto::equal(expected_mac2.data(), message.data() + mac2_at(message), mac_bytes)) {
        return MacCheck::needs_cookie;
    }
    return MacCheck::ok;
}

CookieReply CookieChecker::make_reply(std::span<const std::uint8_t> message,
                                      std::uint32_t sender_index, const Endpoint& source,
                                      Timestamp now, const ProtocolConfig& config) {
    CookieReply reply{};
    reply.type = static_cast<std::uint32_t>(MessageType::cookie_reply);
    reply.receiver_index = sender_index;
    crypto::random_bytes(reply.nonce, sizeof(reply.nonce));
    crypto::Mac cookie = cookie_for(source, now, config);
    // The mac1 of the message we answer is the additional data: only its sender can use this.
    crypto::xaead_seal(reply.encrypted_cookie, cookie_encryption_key_, reply.nonce, cookie,
                       message.subspan(mac1_at(message), mac_bytes));
    crypto::wipe(cookie.data(), cookie.size());
    return reply;
}

CookieMaker::CookieMaker(const crypto::PublicKey& peer_public_key)
    : mac1_(labelled_mac_key(label_mac1, peer_public_key)),
      cookie_decryption_key_(labelled_key(label_cookie, peer_public_key)) {}

bool CookieMaker::has_cookie(Timestamp now, const ProtocolConfig& config) const {
    return cookie_valid_ && now - cookie_born_ < config.cookie_lifetime;
}

void CookieMaker::add_macs(std::span<std::uint8_t> message, Timestamp now,
                           const ProtocolConfig& config) {
    last_mac1_sent_ = mac_over(mac1_, message, mac1_at(message));
    std::memcpy(message.data() + mac1_at(message), last_mac1_sent_.data(), mac_bytes);
    have_sent_mac1_ = true;
    if (has_cookie(now, config)) {
        crypto::Mac mac2 = mac_over(cookie_, message, mac2_at(message));
        std::memcpy(message.data() + mac2_at(message), mac2.data(), mac_bytes);
    } else {
        std::memset(message.data() + mac2_at(message), 0, mac_bytes);
    }
}

bool CookieMaker::consume_reply(const CookieReply& reply, Timestamp now) {
    if (!have_sent_mac1_) {
        return false;
    }
    crypto::Mac cookie;
    if (!crypto::xaead_open(cookie, cookie_decryption_key_, reply.nonce, reply.encrypted_cookie,
                            last_mac1_sent_)) {
        return false;
    }
    cookie_ = cookie;
    cookie_born_ = now;
    cookie_valid_ = true;
    crypto::wipe(cookie.data(), cookie.size());
    return true;
}

}  // namespace meshgate::control
