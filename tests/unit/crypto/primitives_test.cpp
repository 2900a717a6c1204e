// Known answers for the handshake primitives: RFC 7748 (X25519), RFC 8439 (ChaCha20-Poly1305),
// draft-irtf-cfrg-xchacha (XChaCha20-Poly1305); TAI64N ordering; base64 keys as `wg` prints.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "crypto/aead.hpp"
#include "crypto/keys.hpp"
#include "crypto/secure.hpp"
#include "crypto/tai64n.hpp"
#include "crypto/x25519.hpp"
#include "tests/support/hex.hpp"

namespace meshgate::crypto {
namespace {

using test::from_hex;
using test::to_hex;

template <std::size_t N>
Secret<N> secret_from_hex(std::string_view text) {
    auto bytes = from_hex(text);
    EXPECT_EQ(bytes.size(), N);
    return Secret<N>(std::span<const std::uint8_t, N>(bytes.data(), N));
}

PublicKey public_from_hex(std::string_view text) {
    auto bytes = from_hex(text);
    PublicKey key{};
    std::copy(bytes.begin(), bytes.end(), key.begin());
    return key;
}

std::vector<std::uint8_t> bytes_of(std::string_view text) {
    return {text.begin(), text.end()};
}

TEST(X25519, Rfc7748Section52) {
    auto scalar =
        secret_from_hex<32>("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    auto point =
        public_from_hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
    SharedSecret out;
    ASSERT_TRUE(dh(out, scalar, point));
    EXPECT_EQ(to_hex(out.data(), 32),
              "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

TEST(X25519, Rfc7748Section61DiffieHellman) {
    auto alice =
        secret_from_hex<32>("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    auto bob =
        secret_from_hex<32>("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    EXPECT_EQ(to_hex(derive_public_key(alice)),
              "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    EXPECT_EQ(to_hex(derive_public_key(bob)),
              "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    SharedSecret a, b;
    ASSERT_TRUE(dh(a, alice, derive_public_key(bob)));
    ASSERT_TRUE(dh(b, bob, derive_public_key(alice)));
    EXPECT_EQ(to_hex(a.data(), 32),
              "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    EXPECT_TRUE(a == b);
}

TEST(X25519, AllZeroSharedSecretIsAnError) {
    auto key = generate_private_key();
    // The identity and a point of order 8: both force an all-zero result.
    for (auto text : {"0000000000000000000000000000000000000000000000000000000000000000",
                      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"}) {
        SharedSecret out;
        EXPECT_FALSE(dh(out, key, public_from_hex(text))) << text;
        EXPECT_TRUE(out.is_zero());
    }
}

TEST(X25519, GeneratedKeysAreClampedAndAgree) {
    auto a = generate_private_key();
    auto b = generate_private_key();
    EXPECT_EQ(a.data()[0] & 7, 0);
    EXPECT_EQ(a.data()[31] & 0xC0, 0x40);
    SharedSecret ab, ba;
    ASSERT_TRUE(dh(ab, a, derive_public_key(b)));
    ASSERT_TRUE(dh(ba, b, derive_public_key(a)));
    EXPECT_TRUE(ab == ba);
}

const char* sunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

TEST(Aead, Rfc8439Section282) {
    auto key = from_hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    auto nonce_bytes = from_hex("070000004041424344454647");
    AeadNonce nonce;
    std::copy(nonce_bytes.begin(), nonce_bytes.end(), nonce.begin());
    auto aad = from_hex("50515253c0c1c2c3c4c5c6c7");
    auto plaintext = bytes_of(sunscreen);
    std::vector<std::uint8_t> sealed(plaintext.size() + aead_overhead);
    aead_seal_with_nonce(sealed, std::span<const std::uint8_t, 32>(key.data(), 32), nonce,
                         plaintext, aad);
    EXPECT_EQ(
        to_hex(sealed),
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69"
        "da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad6759455"
        "85808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
        "1ae10b594f09e26a7e902ecbd0600691");
    std::vector<std::uint8_t> opened(plaintext.size());
    ASSERT_TRUE(aead_open_with_nonce(opened, std::span<const std::uint8_t, 32>(key.data(), 32),
                                     nonce, sealed, aad));
    EXPECT_EQ(opened, plaintext);
}

// RFC 8439 Appendix A.5: its nonce has WireGuard's shape (32 zero bits, then 64 bits), so it
// checks the counter-to-nonce encoding of aead_open too.
TEST(Aead, Rfc8439AppendixA5WithWireGuardNonce) {
    auto key =
        secret_from_hex<32>("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
    const std::uint64_t counter = 0x0807060504030201ULL;  // nonce 00000000 0102030405060708
    auto aad = from_hex("f33388860000000000004e91");
    auto sealed = from_hex(
        "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e38"
        "2d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f9"
        "82b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d"
        "46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04"
        "b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049"
        "e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b"
        "eead9d67890cbb22392336fea1851f38");
    std::vector<std::uint8_t> opened(sealed.size() - aead_overhead);
    ASSERT_TRUE(aead_open(opened, key, counter, sealed, aad));
    std::string text(opened.begin(), opened.end());
    EXPECT_EQ(text.substr(0, 30), "Internet-Drafts are draft docu");

    std::vector<std::uint8_t> resealed(sealed.size());
    aead_seal(resealed, key, counter, opened, aad);
    EXPECT_EQ(resealed, sealed);

    sealed[10] ^= 1;
    EXPECT_FALSE(aead_open(opened, key, counter, sealed, aad));
    EXPECT_TRUE(is_zero(opened.data(), opened.size())) << "failed open must not leave plaintext";
}

TEST(Aead, WrongCounterOrAadOrShortInputFails) {
    auto key =
        secret_from_hex<32>("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    auto plaintext = bytes_of("handshake payload");
    std::vector<std::uint8_t> sealed(plaintext.size() + aead_overhead);
    aead_seal(sealed, key, 0, plaintext, {});
    std::vector<std::uint8_t> opened(plaintext.size());
    EXPECT_TRUE(aead_open(opened, key, 0, sealed, {}));
    EXPECT_FALSE(aead_open(opened, key, 1, sealed, {}));
    std::uint8_t aad = 1;
    EXPECT_FALSE(aead_open(opened, key, 0, sealed, std::span(&aad, 1)));
    std::vector<std::uint8_t> empty;
    EXPECT_FALSE(aead_open(empty, key, 0, std::span(sealed.data(), 15), {}));
}

TEST(XAead, DraftIrtfCfrgXchachaA31) {
    auto key = from_hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    auto nonce = from_hex("404142434445464748494a4b4c4d4e4f5051525354555657");
    auto aad = from_hex("50515253c0c1c2c3c4c5c6c7");
    auto plaintext = bytes_of(sunscreen);
    std::vector<std::uint8_t> sealed(plaintext.size() + aead_overhead);
    std::span<const std::uint8_t, 32> key_span(key.data(), 32);
    std::span<const std::uint8_t, 24> nonce_span(nonce.data(), 24);
    xaead_seal(sealed, key_span, nonce_span, plaintext, aad);
    EXPECT_EQ(
        to_hex(sealed),
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f"
        "4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76"
        "b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
        "c0875924c1c7987947deafd8780acf49");
    std::vector<std::uint8_t> opened(plaintext.size());
    ASSERT_TRUE(xaead_open(opened, key_span, nonce_span, sealed, aad));
    EXPECT_EQ(opened, plaintext);
    sealed.back() ^= 0x80;
    EXPECT_FALSE(xaead_open(opened, key_span, nonce_span, sealed, aad));
}

TEST(Tai64n, LayoutAndOrdering) {
    using namespace std::chrono;
    system_clock::time_point epoch{};
    auto at_epoch = tai64n_from(epoch);
    EXPECT_EQ(to_hex(at_epoch), "400000000000000000000000");

    auto t = epoch + seconds(0x12345678) + nanoseconds(999'999'999);
    auto stamp = tai64n_from(t);
    EXPECT_EQ(to_hex(stamp.data(), 8), "4000000012345678");
    // Nanoseconds are floored to a multiple of 2^24 ns.
    std::uint32_t nanos = std::uint32_t(stamp[8]) << 24 | std::uint32_t(stamp[9]) << 16 |
                          std::uint32_t(stamp[10]) << 8 | stamp[11];
    EXPECT_EQ(nanos % (1u << 24), 0u);
    EXPECT_LE(nanos, 999'999'999u);
    EXPECT_GT(nanos, 999'999'999u - (1u << 24));

    EXPECT_TRUE(tai64n_after(stamp, at_epoch));
    EXPECT_FALSE(tai64n_after(at_epoch, stamp));
    EXPECT_FALSE(tai64n_after(stamp, stamp));
    // Within one 16.8 ms granule two timestamps are equal, so "not newer" rejects the second.
    EXPECT_EQ(tai64n_from(epoch + milliseconds(1)), tai64n_from(epoch + milliseconds(2)));
    EXPECT_TRUE(tai64n_after(tai64n_from(epoch + milliseconds(40)), tai64n_from(epoch)));
}

TEST(Base64Keys, RoundTripAsWgPrintsThem) {
    // `echo 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=' | wg pubkey` prints the second key.
    auto private_key = private_key_from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=");
    ASSERT_TRUE(private_key.has_value());
    EXPECT_EQ(to_base64(private_key->span()), "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=");
    EXPECT_EQ(to_base64(derive_public_key(*private_key)),
              "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=");
}

TEST(Base64Keys, RejectsEverythingElse) {
    for (std::string_view bad : {
             "",
             "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk",    // no padding
             "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk==",  // too long
             "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm==",   // 31 bytes
             "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk ",   // trailing space
             "yAnz5TF-lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",   // URL-safe alphabet
             "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBml=",   // non-zero padding bits
         }) {
        EXPECT_FALSE(public_key_from_base64(bad).has_value()) << "'" << bad << "'";
        EXPECT_FALSE(private_key_from_base64(bad).has_value()) << "'" << bad << "'";
    }
}

TEST(Secure, EqualAndWipe) {
    std::uint8_t a[16] = {1, 2, 3};
    std::uint8_t b[16] = {1, 2, 3};
    EXPECT_TRUE(equal(a, b, sizeof(a)));
    b[15] = 1;
    EXPECT_FALSE(equal(a, b, sizeof(a)));
    for (int bit = 0; bit < 128; ++bit) {
        std::uint8_t x[16] = {}, y[16] = {};
        y[bit / 8] = static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(equal_tag(x, y)) << "bit " << bit;
        EXPECT_TRUE(equal_tag(y, y));
    }
    wipe(a, sizeof(a));
    EXPECT_TRUE(is_zero(a, sizeof(a)));
}

}  // namespace
}  // namespace meshgate::crypto
