// dh_batch(): RFC 7748 §5.2's vectors (single and iterated), random scalars and points against
// libsodium at every batch size from 1 to 17 with both kinds of job mixed, public keys against
// crypto_scalarmult_curve25519_base, low-order points, and non-canonical u-coordinates. Every
// test runs twice: on the IFMA lanes (skipped on a CPU without IFMA) and on the portable path.
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "crypto/cpu_features.hpp"
#include "crypto/x25519.hpp"
#include "tests/support/hex.hpp"

namespace meshgate::crypto {
namespace {

using test::from_hex;
using test::to_hex;

PublicKey public_from_hex(std::string_view text) {
    auto bytes = from_hex(text);
    PublicKey key{};
    std::copy(bytes.begin(), bytes.end(), key.begin());
    return key;
}

PrivateKey private_from_bytes(std::span<const std::uint8_t, key_size> bytes) {
    return PrivateKey(bytes);
}

PrivateKey private_from_hex(std::string_view text) {
    auto bytes = from_hex(text);
    return private_from_bytes(std::span<const std::uint8_t, key_size>(bytes.data(), key_size));
}

template <typename Rng>
PublicKey random_key_bytes(Rng& rng) {
    PublicKey bytes;
    for (auto& byte : bytes) {
        byte = static_cast<std::uint8_t>(rng());
    }
    return bytes;
}

// What libsodium says, by dh()'s rule: ok = false and zeros for a low-order point.
struct Expected {
    std::string out;
    bool ok;
};

Expected libsodium_dh(const PrivateKey& key, const PublicKey& point) {
    SharedSecret out;
    bool ok = dh(out, key, point);
    return {to_hex(out.data(), key_size), ok};
}

Expected libsodium_public_key(const PrivateKey& key) {
    PublicKey out{};
    crypto_scalarmult_curve25519_base(out.data(), key.data());
    return {to_hex(out), true};
}

// One job per (key, point) pair in one batch; a null point asks for the public key.
std::vector<Expected> run(const CpuFeatures& cpu, const std::vector<const PrivateKey*>& keys,
                          const std::vector<const PublicKey*>& points) {
    std::vector<SharedSecret> secrets(keys.size());
    std::vector<PublicKey> publics(keys.size());
    std::vector<DhJob> jobs;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        jobs.push_back(points[i] != nullptr ? DhJob::shared_secret(secrets[i], *keys[i], *points[i])
                                            : DhJob::public_key(publics[i], *keys[i]));
    }
    dh_batch(jobs, cpu);
    std::vector<Expected> results;
    for (const DhJob& job : jobs) {
        results.push_back({to_hex(job.out, key_size), job.ok});
    }
    return results;
}

// The same job in all eight lanes, so the IFMA path runs it (a lone job goes to libsodium).
Expected run_in_every_lane(const CpuFeatures& cpu, const PrivateKey& key, const PublicKey* point) {
    auto results =
        run(cpu, std::vector<const PrivateKey*>(8, &key), std::vector<const PublicKey*>(8, point));
    for (const auto& result : results) {
        EXPECT_EQ(result.out, results[0].out);
        EXPECT_EQ(result.ok, results[0].ok);
    }
    return results[0];
}

enum class Path { ifma, portable };

void PrintTo(Path path, std::ostream* out) {
    *out << (path == Path::ifma ? "ifma" : "portable");
}

class DhBatch : public ::testing::TestWithParam<Path> {
  protected:
    void SetUp() override {
        const auto hardware = CpuFeatures::detect_hardware();
        if (GetParam() == Path::ifma && !(hardware.has_avx512_core() && hardware.avx512ifma)) {
            GTEST_SKIP() << "CPU lacks AVX-512 IFMA";
        }
        cpu_ = GetParam() == Path::ifma ? hardware : CpuFeatures::portable();
    }

    CpuFeatures cpu_;
};

TEST_P(DhBatch, Rfc7748Section52) {
    struct Vector {
        const char *scalar, *u, *out;
    } vectors[] = {
        {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
        // u has its top bit set: decoding must mask it.
        {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
         "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
         "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
    };
    // Both vectors interleaved in one batch of eight: lanes must not leak into each other.
    std::vector<PrivateKey> keys;
    std::vector<PublicKey> points;
    for (const auto& v : vectors) {
        keys.push_back(private_from_hex(v.scalar));
        points.push_back(public_from_hex(v.u));
    }
    std::vector<const PrivateKey*> key_of;
    std::vector<const PublicKey*> point_of;
    for (int lane = 0; lane < 8; ++lane) {
        key_of.push_back(&keys[lane % 2]);
        point_of.push_back(&points[lane % 2]);
    }
    auto results = run(cpu_, key_of, point_of);
    for (int lane = 0; lane < 8; ++lane) {
        EXPECT_TRUE(results[lane].ok) << "lane " << lane;
        EXPECT_EQ(results[lane].out, vectors[lane % 2].out) << "lane " << lane;
    }
}

// RFC 7748 §5.2's iteration: k, u = X25519(k, u), k, starting from k = u = 9.
std::string iterate(const CpuFeatures& cpu, int iterations) {
    PublicKey k{9}, u{9};
    for (int i = 0; i < iterations; ++i) {
        Expected result = run_in_every_lane(cpu, private_from_bytes(k), &u);
        u = k;
        k = public_from_hex(result.out);
    }
    return to_hex(k);
}

TEST_P(DhBatch, Rfc7748IteratedOnce) {
    EXPECT_EQ(iterate(cpu_, 1), "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
}

TEST_P(DhBatch, Rfc7748IteratedThousandTimes) {
    EXPECT_EQ(iterate(cpu_, 1000),
              "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

// 10,000 random (scalar, point) pairs in batches of 1, 2, ..., 17, 1, 2, ...: every remainder
// the dispatcher can see. Public-key jobs (one in eight, on top of the pairs) share their
// passes. Random u-coordinates have the top bit set half the time.
TEST_P(DhBatch, MatchesLibsodiumAtEveryBatchSize) {
    std::mt19937_64 rng(7748);
    int pairs = 0;
    for (std::size_t size = 1; pairs < 10000; size = size % 17 + 1) {
        std::vector<PrivateKey> keys;
        std::vector<PublicKey> points;
        for (std::size_t i = 0; i < size; ++i) {
            PublicKey scalar = random_key_bytes(rng);
            keys.push_back(private_from_bytes(scalar));
            points.push_back(random_key_bytes(rng));
        }
        std::vector<const PrivateKey*> key_of;
        std::vector<const PublicKey*> point_of;
        for (std::size_t i = 0; i < size; ++i) {
            key_of.push_back(&keys[i]);
            point_of.push_back(rng() % 8 == 0 ? nullptr : &points[i]);
        }
        auto results = run(cpu_, key_of, point_of);
        for (std::size_t i = 0; i < size; ++i) {
            Expected expected = point_of[i] != nullptr ? libsodium_dh(keys[i], points[i])
                                                       : libsodium_public_key(keys[i]);
            ASSERT_EQ(results[i].out, expected.out) << "batch of " << size << ", job " << i;
            ASSERT_EQ(results[i].ok, expected.ok) << "batch of " << size << ", job " << i;
        }
        pairs += static_cast<int>(size) -
                 static_cast<int>(std::count(point_of.begin(), point_of.end(), nullptr));
    }
}

TEST_P(DhBatch, PublicKeysMatchLibsodiumBase) {
    auto alice =
        private_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    EXPECT_EQ(run_in_every_lane(cpu_, alice, nullptr).out,
              "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    std::mt19937_64 rng(9);
    for (int round = 0; round < 50; ++round) {
        std::vector<PrivateKey> keys;
        for (int i = 0; i < 8; ++i) {
            PublicKey scalar = random_key_bytes(rng);
            keys.push_back(private_from_bytes(scalar));
        }
        std::vector<const PrivateKey*> key_of;
        for (const auto& key : keys) {
            key_of.push_back(&key);
        }
        auto results = run(cpu_, key_of, std::vector<const PublicKey*>(8, nullptr));
        for (int i = 0; i < 8; ++i) {
            EXPECT_TRUE(results[i].ok);
            EXPECT_EQ(results[i].out, libsodium_public_key(keys[i]).out) << "round " << round;
        }
    }
}

// u-coordinates of order 1, 2, 4 or 8 (libsodium's list), canonical or not, with the top bit
// clear or set: whatever the clamped scalar, the result is zero, so the job fails.
TEST_P(DhBatch, LowOrderPointsFail) {
    const char* low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",  // 0
        "0100000000000000000000000000000000000000000000000000000000000000",  // 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p - 1
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p + 1
    };
    std::mt19937_64 rng(8);
    PublicKey scalar = random_key_bytes(rng);
    PrivateKey key = private_from_bytes(scalar);
    for (const char* text : low_order) {
        for (std::uint8_t top : {0x00, 0x80}) {
            PublicKey point = public_from_hex(text);
            point[31] |= top;
            Expected result = run_in_every_lane(cpu_, key, &point);
            EXPECT_FALSE(result.ok) << to_hex(point);
            EXPECT_EQ(result.out, std::string(64, '0')) << to_hex(point);
            EXPECT_FALSE(libsodium_dh(key, point).ok) << to_hex(point);
        }
    }
}

// u in [p + 2, 2^255) is p + k for a small k: it must act as k does (RFC 7748 §5: accept
// non-canonical values, reduce them). Top bit clear and set.
TEST_P(DhBatch, NonCanonicalPointsMatchLibsodium) {
    std::mt19937_64 rng(255);
    PublicKey scalar = random_key_bytes(rng);
    PrivateKey key = private_from_bytes(scalar);
    for (std::uint8_t k = 2; k < 19; ++k) {
        for (std::uint8_t top : {0x00, 0x80}) {
            PublicKey point =
                public_from_hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
            point[0] = static_cast<std::uint8_t>(point[0] + k);  // p + k, no carry below 2^255
            point[31] |= top;
            PublicKey reduced{k};
            Expected result = run_in_every_lane(cpu_, key, &point);
            Expected expected = libsodium_dh(key, point);
            EXPECT_EQ(result.out, expected.out) << "p + " << int{k};
            EXPECT_EQ(result.ok, expected.ok) << "p + " << int{k};
            EXPECT_EQ(result.out, libsodium_dh(key, reduced).out) << "p + " << int{k};
        }
    }
}

TEST_P(DhBatch, EmptyBatchIsFine) {
    dh_batch({}, cpu_);
}

INSTANTIATE_TEST_SUITE_P(X25519, DhBatch, ::testing::Values(Path::ifma, Path::portable),
                         [](const auto& info) {
                             return info.param == Path::ifma ? "ifma" : "portable";
                         });

}  // namespace
}  // namespace meshgate::crypto
