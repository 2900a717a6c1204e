// WireGuard's four messages as they sit on the wire (whitepaper §5.4). All integers are
// little-endian; the structs are packed byte layouts, read and written with memcpy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "crypto/aead.hpp"
#include "crypto/blake2s.hpp"
#include "crypto/tai64n.hpp"

namespace meshgate::control {

enum class MessageType : std::uint32_t {
    initiation = 1,
    response = 2,
    cookie_reply = 3,
    transport_data = 4,
};

inline constexpr std::size_t key_bytes = 32;
inline constexpr std::size_t tag_bytes = crypto::aead_overhead;
inline constexpr std::size_t mac_bytes = crypto::mac_size;
inline constexpr std::size_t timestamp_bytes = sizeof(crypto::Tai64n);
inline constexpr std::size_t cookie_nonce_bytes = crypto::xaead_nonce_size;

// The two MACs that end every handshake message (§5.4.4).
struct __attribute__((packed)) MacPair {
    std::uint8_t mac1[mac_bytes];
    std::uint8_t mac2[mac_bytes];
};

struct __attribute__((packed)) Initiation {
    std::uint32_t type;  // 1, with three zero bytes
    std::uint32_t sender_index;
    std::uint8_t unencrypted_ephemeral[key_bytes];
    std::uint8_t encrypted_static[key_bytes + tag_bytes];
    std::uint8_t encrypted_timestamp[timestamp_bytes + tag_bytes];
    MacPair macs;
};

struct __attribute__((packed)) Response {
    std::uint32_t type;  // 2
    std::uint32_t sender_index;
    std::uint32_t receiver_index;
    std::uint8_t unencrypted_ephemeral[key_bytes];
    std::uint8_t encrypted_nothing[tag_bytes];
    MacPair macs;
};

struct __attribute__((packed)) CookieReply {
    std::uint32_t type;  // 3
    std::uint32_t receiver_index;
    std::uint8_t nonce[cookie_nonce_bytes];
    std::uint8_t encrypted_cookie[mac_bytes + tag_bytes];
};

struct __attribute__((packed)) TransportHeader {
    std::uint32_t type;  // 4
    std::uint32_t receiver_index;
    std::uint64_t counter;
    // followed by the encrypted, padded packet and its tag
};

static_assert(sizeof(Initiation) == 148);
static_assert(sizeof(Response) == 92);
static_assert(sizeof(CookieReply) == 64);
static_assert(sizeof(TransportHeader) == 16);
inline constexpr std::size_t transport_minimum = sizeof(TransportHeader) + tag_bytes;

// Bytes of a handshake message covered by mac1 (everything before it), and by mac2
// (everything before mac2).
template <typename Message>
constexpr std::size_t mac1_offset() {
    return sizeof(Message) - sizeof(MacPair);
}
template <typename Message>
constexpr std::size_t mac2_offset() {
    return sizeof(Message) - mac_bytes;
}

}  // namespace meshgate::control
