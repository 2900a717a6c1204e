#include "crypto/keys.hpp"

#include <sodium.h>

namespace meshgate::crypto {
namespace {

constexpr std::size_t base64_key_length = 44;  // sodium_base64_ENCODED_LEN(32, ORIGINAL) - 1

// Decodes into `out` only if the text is a canonical 44-character encoding of 32 bytes.
bool decode_key(std::string_view text, std::uint8_t* out) {
    if (text.size() != base64_key_length || text[43] != '=' || text[42] == '=') {
        return false;
    }
    std::size_t decoded = 0;
    const char* end = nullptr;
    int rc = sodium_base642bin(out, key_size, text.data(), text.size(), nullptr, &decoded, &end,
                               sodium_base64_VARIANT_ORIGINAL);
    // libsodium rejects non-zero padding bits, so each key has exactly one accepted spelling.
    return rc == 0 && decoded == key_size && end == text.data() + text.size();
}

}  // namespace

std::string to_base64(std::span<const std::uint8_t, key_size> key) {
    char text[base64_key_length + 1];
    sodium_bin2base64(text, sizeof(text), key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string out(text, base64_key_length);
    wipe(text, sizeof(text));
    return out;
}

std::optional<PublicKey> public_key_from_base64(std::string_view text) {
    PublicKey key{};
    if (!decode_key(text, key.data())) {
        return std::nullopt;
    }
    return key;
}

std::optional<PrivateKey> private_key_from_base64(std::string_view text) {
    PrivateKey key;
    if (!decode_key(text, key.data())) {
        key.clear();
        return std::nullopt;
    }
    return key;
}

}  // namespace meshgate::crypto
