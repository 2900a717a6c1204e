// BLAKE2s and WireGuard's constructions on it: RFC 7693 known answers, and differential
// checks against OpenSSL's BLAKE2S-256 and HMAC.
#include "crypto/blake2s.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <random>
#include <string>
#include <vector>

#include "tests/support/hex.hpp"
#include "tests/support/random.hpp"

namespace meshgate::crypto {
namespace {

using test::from_hex;
using test::to_hex;

std::vector<std::uint8_t> openssl_blake2s256(const std::vector<std::uint8_t>& input) {
    std::vector<std::uint8_t> out(32);
    unsigned int size = 0;
    EXPECT_EQ(EVP_Digest(input.data(), input.size(), out.data(), &size, EVP_blake2s256(), nullptr),
              1);
    EXPECT_EQ(size, 32u);
    return out;
}

TEST(Blake2s, Rfc7693AppendixB) {
    const std::string abc = "abc";
    Hash out;
    hash(out, std::span(reinterpret_cast<const std::uint8_t*>(abc.data()), abc.size()));
    EXPECT_EQ(to_hex(out), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

// RFC 7693 Appendix E: hashes of deterministic inputs over every digest and input length the
// RFC picks, keyed and unkeyed, folded into one BLAKE2s-256 "grand hash".
void selftest_sequence(std::uint8_t* out, std::size_t length, std::uint32_t seed) {
    std::uint32_t a = 0xDEAD4BAD * seed;
    std::uint32_t b = 1;
    for (std::size_t i = 0; i < length; ++i) {
        std::uint32_t t = a + b;
        a = b;
        b = t;
        out[i] = static_cast<std::uint8_t>(t >> 24);
    }
}

TEST(Blake2s, Rfc7693AppendixEGrandHash) {
    const std::size_t digest_lengths[] = {16, 20, 28, 32};
    const std::size_t input_lengths[] = {0, 3, 64, 65, 255, 1024};
    std::uint8_t input[1024];
    std::uint8_t digest[32];
    std::uint8_t key[32];
    Blake2s grand(32);
    for (std::size_t digest_length : digest_lengths) {
        for (std::size_t input_length : input_lengths) {
            selftest_sequence(input, input_length, static_cast<std::uint32_t>(input_length));
            Blake2s(digest_length).update({input, input_length}).finish(digest);
            grand.update({digest, digest_length});
            selftest_sequence(key, digest_length, static_cast<std::uint32_t>(digest_length));
            Blake2s(digest_length, {key, digest_length})
                .update({input, input_length})
                .finish(digest);
            grand.update({digest, digest_length});
        }
    }
    std::uint8_t result[32];
    grand.finish(result);
    EXPECT_EQ(to_hex(result, 32),
              "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
}

TEST(Blake2s, MatchesOpenSslAtEveryLengthAroundBlockBoundaries) {
    std::mt19937_64 rng(7693);
    for (std::size_t length = 0; length <= 300; ++length) {
        auto input = test::random_bytes(rng, length);
        Hash ours;
        hash(ours, input);
        EXPECT_EQ(to_hex(ours), to_hex(openssl_blake2s256(input))) << "length " << length;
    }
}

TEST(Blake2s, IncrementalUpdatesInAnySplitMatchOneShot) {
    std::mt19937_64 rng(1);
    auto input = test::random_bytes(rng, 1000);
    Hash one_shot;
    hash(one_shot, input);
    for (std::size_t split : {0, 1, 63, 64, 65, 128, 999, 1000}) {
        Hash split_hash;
        Blake2s hasher(32);
        hasher.update({input.data(), split}).update({input.data() + split, input.size() - split});
        hasher.finish(split_hash.data());
        EXPECT_EQ(split_hash, one_shot) << "split at " << split;
    }
}

TEST(Blake2s, TwoPartHashIsHashOfConcatenation) {
    std::mt19937_64 rng(2);
    auto a = test::random_bytes(rng, 32);
    auto b = test::random_bytes(rng, 77);
    std::vector<std::uint8_t> joined = a;
    joined.insert(joined.end(), b.begin(), b.end());
    Hash two, one;
    hash(two, a, b);
    hash(one, joined);
    EXPECT_EQ(two, one);
}

TEST(Hmac, MatchesOpenSslHmacBlake2s) {
    std::mt19937_64 rng(2104);
    for (std::size_t key_length : {0, 1, 32, 64, 65, 100}) {
        for (std::size_t length : {0, 1, 33, 64, 200}) {
            auto key = test::random_bytes(rng, key_length);
            auto input = test::random_bytes(rng, length);
            std::uint8_t ours[32];
            hmac(std::span<std::uint8_t, 32>(ours), key, input);
            std::uint8_t theirs[32];
            unsigned int size = 0;
            // OpenSSL reads a null key pointer as "reuse the previous key": pass a real one.
            static const std::uint8_t empty = 0;
            ASSERT_NE(HMAC(EVP_blake2s256(), key.empty() ? &empty : key.data(),
                           static_cast<int>(key.size()), input.empty() ? &empty : input.data(),
                           input.size(), theirs, &size),
                      nullptr);
            ASSERT_EQ(size, 32u);
            EXPECT_EQ(to_hex(ours, 32), to_hex(theirs, 32))
                << "key " << key_length << " input " << length;
        }
    }
}

TEST(Kdf, ChainFollowsWhitepaperDefinition) {
    std::mt19937_64 rng(54);
    auto key = test::random_bytes(rng, 32);
    auto input = test::random_bytes(rng, 32);
    SymmetricKey t1, t2, t3;
    kdf3(t1, t2, t3, key, input);

    // τ0 = HMAC(key, input); τ1 = HMAC(τ0, 0x1); τ2 = HMAC(τ0, τ1 || 0x2); τ3 = HMAC(τ0, τ2 || 0x3)
    std::uint8_t t0[32], expect1[32], expect2[32], expect3[32], buffer[33];
    hmac(std::span<std::uint8_t, 32>(t0), key, input);
    std::uint8_t one = 1;
    hmac(std::span<std::uint8_t, 32>(expect1), std::span(t0), std::span(&one, 1));
    std::copy(expect1, expect1 + 32, buffer);
    buffer[32] = 2;
    hmac(std::span<std::uint8_t, 32>(expect2), std::span(t0), std::span(buffer));
    std::copy(expect2, expect2 + 32, buffer);
    buffer[32] = 3;
    hmac(std::span<std::uint8_t, 32>(expect3), std::span(t0), std::span(buffer));

    EXPECT_EQ(to_hex(t1.data(), 32), to_hex(expect1, 32));
    EXPECT_EQ(to_hex(t2.data(), 32), to_hex(expect2, 32));
    EXPECT_EQ(to_hex(t3.data(), 32), to_hex(expect3, 32));

    SymmetricKey only1, pair1, pair2;
    kdf1(only1, key, input);
    kdf2(pair1, pair2, key, input);
    EXPECT_TRUE(only1 == t1);
    EXPECT_TRUE(pair1 == t1);
    EXPECT_TRUE(pair2 == t2);
}

TEST(Mac, IsKeyedBlake2s128) {
    // MAC(key, input) = keyed BLAKE2s with a 16-byte digest: the digest length and key length
    // are both in the parameter block, so it differs from a truncated BLAKE2s-256.
    std::mt19937_64 rng(3);
    auto key = test::random_bytes(rng, 32);
    auto input = test::random_bytes(rng, 116);
    Mac ours;
    mac(ours, key, input);

    // OpenSSL's BLAKE2SMAC with a 16-byte output is the same construction.
    EVP_MAC* algorithm = EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr);
    ASSERT_NE(algorithm, nullptr);
    EVP_MAC_CTX* context = EVP_MAC_CTX_new(algorithm);
    std::size_t size = 16;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t("size", &size), OSSL_PARAM_construct_end()};
    ASSERT_EQ(EVP_MAC_init(context, key.data(), key.size(), params), 1);
    ASSERT_EQ(EVP_MAC_update(context, input.data(), input.size()), 1);
    std::uint8_t reference[16];
    std::size_t written = 0;
    ASSERT_EQ(EVP_MAC_final(context, reference, &written, sizeof(reference)), 1);
    EVP_MAC_CTX_free(context);
    EVP_MAC_free(algorithm);
    ASSERT_EQ(written, 16u);
    EXPECT_EQ(to_hex(ours), to_hex(reference, 16));
    Hash full;
    hash(full, input);
    EXPECT_NE(to_hex(ours), to_hex(full.data(), 16));
}

TEST(MacKey, MatchesMacForEveryKeyAndInputLength) {
    // The precomputed key block must give the plain MAC's answer everywhere, including the
    // empty input (where the key block itself is the final block) and block boundaries.
    std::mt19937_64 rng(4);
    for (std::size_t key_length = 1; key_length <= blake2s_max_key; ++key_length) {
        auto key = test::random_bytes(rng, key_length);
        const MacKey prekeyed(key);
        for (std::size_t length = 0; length <= 200; ++length) {
            auto input = test::random_bytes(rng, length);
            Mac expected, ours;
            mac(expected, key, input);
            prekeyed.mac(ours, input);
            ASSERT_EQ(to_hex(ours), to_hex(expected))
                << "key " << key_length << " input " << length;
        }
    }
}

}  // namespace
}  // namespace meshgate::crypto
