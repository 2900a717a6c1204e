// Poly1305: the RFC 8439 vector, the scalar form against libsodium at every length around
// the block size, the AEAD framing against a buffer built by hand, and the eight-lane IFMA
// form against the scalar one with mixed lengths.
#include "crypto/poly1305.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <random>
#include <string>
#include <vector>

#include "crypto/cpu_features.hpp"
#include "tests/support/hex.hpp"
#include "tests/support/random.hpp"

namespace meshgate::crypto::poly1305 {
namespace {

using test::from_hex;
using test::to_hex;

TEST(Poly1305, Rfc8439Section252) {
    auto key = from_hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
    std::string message = "Cryptographic Forum Research Group";
    std::uint8_t tag[tag_size];
    mac(tag, key.data(), reinterpret_cast<const std::uint8_t*>(message.data()), message.size());
    EXPECT_EQ(to_hex(tag, tag_size), "a8061dc1305136c6c22b8baf0c0127a9");
}

TEST(Poly1305, MatchesLibsodiumAtEveryLength) {
    std::mt19937_64 rng(1305);
    for (std::size_t length = 0; length <= 300; ++length) {
        auto key = test::random_bytes(rng, key_size);
        auto message = test::random_bytes(rng, length);
        std::uint8_t ours[tag_size], theirs[tag_size];
        static const std::uint8_t empty = 0;
        const std::uint8_t* data = message.empty() ? &empty : message.data();
        mac(ours, key.data(), data, length);
        crypto_onetimeauth_poly1305(theirs, data, length, key.data());
        ASSERT_EQ(to_hex(ours, tag_size), to_hex(theirs, tag_size)) << "length " << length;
    }
}

TEST(Poly1305, LimbExtremesMatchLibsodium) {
    // All-ones keys and messages push every limb to its maximum before each reduction.
    std::vector<std::uint8_t> key(key_size, 0xFF), message(1024, 0xFF);
    std::uint8_t ours[tag_size], theirs[tag_size];
    mac(ours, key.data(), message.data(), message.size());
    crypto_onetimeauth_poly1305(theirs, message.data(), message.size(), key.data());
    EXPECT_EQ(to_hex(ours, tag_size), to_hex(theirs, tag_size));
}

TEST(AeadTag, IsTheMacOfTheFramedCiphertext) {
    std::mt19937_64 rng(8439);
    for (std::size_t length : {0, 1, 15, 16, 17, 63, 64, 65, 1420}) {
        auto key = test::random_bytes(rng, key_size);
        auto ciphertext = test::random_bytes(rng, length);
        std::vector<std::uint8_t> framed = ciphertext;
        framed.resize((length + 15) / 16 * 16, 0);
        for (int i = 0; i < 8; ++i) {
            framed.push_back(0);  // additional data length: none
        }
        for (int i = 0; i < 8; ++i) {
            framed.push_back(static_cast<std::uint8_t>(std::uint64_t{length} >> (8 * i)));
        }
        std::uint8_t expected[tag_size], actual[tag_size];
        mac(expected, key.data(), framed.data(), framed.size());
        aead_tag(actual, key.data(), ciphertext.data(), length);
        EXPECT_EQ(to_hex(actual, tag_size), to_hex(expected, tag_size)) << "length " << length;
    }
}

// Random keys and messages of `lengths` (one lane each, up to eight) through aead_tags_x8,
// each tag against the scalar form. Buffers are exactly as long as the messages, so a load
// past a lane's end shows under AddressSanitizer.
testing::AssertionResult x8_matches_scalar(std::mt19937_64& rng,
                                           const std::vector<std::uint32_t>& lengths) {
    const auto count = static_cast<unsigned>(lengths.size());
    alignas(64) std::uint8_t keys[8][64] = {};
    std::vector<std::vector<std::uint8_t>> messages(count);
    const std::uint8_t* pointers[8] = {};
    std::uint8_t tags[8][tag_size];
    std::uint8_t* outputs[8];
    for (unsigned l = 0; l < count; ++l) {
        for (std::size_t i = 0; i < key_size; ++i) {
            keys[l][i] = static_cast<std::uint8_t>(rng());
        }
        messages[l] = test::random_bytes(rng, lengths[l]);
        pointers[l] = messages[l].data();
        outputs[l] = tags[l];
    }
    aead_tags_x8(outputs, keys, pointers, lengths.data(), count);
    for (unsigned l = 0; l < count; ++l) {
        std::uint8_t expected[tag_size];
        aead_tag(expected, keys[l], pointers[l], lengths[l]);
        if (to_hex(tags[l], tag_size) != to_hex(expected, tag_size)) {
            return testing::AssertionFailure()
                   << "lane " << l << " of " << count << ", length " << lengths[l]
                   << ": tag differs from the scalar form";
        }
    }
    return testing::AssertionSuccess();
}

TEST(AeadTagsX8, MatchesScalarForMixedLanes) {
    if (!CpuFeatures::detect_hardware().avx512ifma) {
        GTEST_SKIP() << "CPU lacks AVX-512 IFMA";
    }
    std::mt19937_64 rng(52);
    for (int round = 0; round < 300; ++round) {
        std::vector<std::uint32_t> lengths(1 + rng() % 8);
        for (std::uint32_t& length : lengths) {
            length = static_cast<std::uint32_t>(round % 3 == 0 ? rng() % 2000 : rng() % 100);
        }
        ASSERT_TRUE(x8_matches_scalar(rng, lengths)) << "round " << round;
    }
}

// The common case of a burst: every lane the same length, so all blocks but the tail take the
// plain loads; with one lane empty, none do.
TEST(AeadTagsX8, MatchesScalarForEqualLanesAndAnEmptyOne) {
    if (!CpuFeatures::detect_hardware().avx512ifma) {
        GTEST_SKIP() << "CPU lacks AVX-512 IFMA";
    }
    std::mt19937_64 rng(53);
    for (std::uint32_t length : {1u, 15u, 16u, 17u, 64u, 255u, 256u, 257u, 1420u, 1436u}) {
        for (unsigned count : {1u, 5u, 8u}) {
            for (bool one_empty : {false, true}) {
                std::vector<std::uint32_t> lengths(count, length);
                if (one_empty) {
                    lengths[count / 2] = 0;
                }
                ASSERT_TRUE(x8_matches_scalar(rng, lengths))
                    << (one_empty ? "one lane empty" : "all lanes equal");
            }
        }
    }
}

}  // namespace
}  // namespace meshgate::crypto::poly1305
