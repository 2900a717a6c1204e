// The batch AEAD engine: every backend against libsodium's ChaCha20-Poly1305, over thousands
// of random jobs with mixed lengths, keys, counters and burst sizes, in place and out of place;
// rejection of any flipped bit; and the engine's choice of backend.
#include "crypto/batch_aead.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "crypto/secure.hpp"
#include "tests/support/hex.hpp"

namespace meshgate::crypto {
namespace {

constexpr std::size_t guard_size = 64;
constexpr std::uint8_t guard_byte = 0xA5;

// One job's memory: input, output (or none when in place) and tag, each followed by guard
// bytes that must survive every operation (masked stores must not spill).
struct Packet {
    std::array<std::uint8_t, 32> key{};
    std::uint64_t counter = 0;
    bool in_place = false;
    std::vector<std::uint8_t> plaintext;
    std::vector<std::uint8_t> input;   // length + guard
    std::vector<std::uint8_t> output;  // length + guard (unused when in place)
    std::array<std::uint8_t, aead_tag_size + guard_size> tag{};

    std::uint32_t length() const { return static_cast<std::uint32_t>(plaintext.size()); }
    std::uint8_t* result() { return in_place ? input.data() : output.data(); }

    AeadJob job() {
        return AeadJob{key.data(), counter, input.data(), result(), length(), tag.data()};
    }

    bool guards_intact() const {
        auto intact = [](const std::uint8_t* p, std::size_t n) {
            for (std::size_t i = 0; i < n; ++i) {
                if (p[i] != guard_byte) {
                    return false;
                }
            }
            return true;
        };
        bool ok = intact(input.data() + length(), guard_size) &&
                  intact(tag.data() + aead_tag_size, guard_size);
        return ok && (in_place || intact(output.data() + length(), guard_size));
    }
};

struct Reference {
    std::vector<std::uint8_t> ciphertext;
    std::array<std::uint8_t, aead_tag_size> tag{};
};

Reference sodium_reference(const Packet& packet) {
    Reference out;
    out.ciphertext.resize(packet.plaintext.size());
    std::uint8_t nonce[12] = {};
    for (int i = 0; i < 8; ++i) {
        nonce[4 + i] = static_cast<std::uint8_t>(packet.counter >> (8 * i));
    }
    // libsodium's buffer arguments are declared non-null, even for empty messages.
    std::uint8_t empty = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        out.ciphertext.empty() ? &empty : out.ciphertext.data(), out.tag.data(), nullptr,
        packet.plaintext.empty() ? &empty : packet.plaintext.data(), packet.plaintext.size(),
        nullptr, 0, nullptr, nonce, packet.key.data());
    return out;
}

class Generator {
  public:
    explicit Generator(std::uint64_t seed) : rng_(seed) {
        for (auto& key : keys_) {
            for (auto& byte : key) {
                byte = static_cast<std::uint8_t>(rng_());
            }
        }
    }

    // Lengths that straddle every block and lane boundary the backends care about, plus
    // uniformly random ones up to a full-size Ethernet payload.
    std::uint32_t length() {
        static constexpr std::uint32_t edges[] = {0,   1,   15,  16,  17,   31,   32,   33,  63,
                                                  64,  65,  127, 128, 129,  255,  256,  511, 512,
                                                  576, 767, 768, 769, 1024, 1420, 1440, 1500};
        if (rng_() % 3 == 0) {
            return edges[rng_() % std::size(edges)];
        }
        return static_cast<std::uint32_t>(rng_() % 1501);
    }

    Packet packet(std::uint32_t length) {
        Packet p;
        // A small key pool: bursts hold both repeated and distinct keys, as real ones do.
        p.key = keys_[rng_() % keys_.size()];
        static constexpr std::uint64_t counters[] = {0, 1, 0xFFFFFFFFULL, 0x100000000ULL,
                                                     ~std::uint64_t{0} - 8192};
        p.counter = rng_() % 4 == 0 ? counters[rng_() % std::size(counters)] : rng_();
        p.in_place = rng_() % 2 == 0;
        p.plaintext.resize(length);
        for (auto& byte : p.plaintext) {
            byte = static_cast<std::uint8_t>(rng_());
        }
        p.input.assign(length + guard_size, guard_byte);
        std::copy(p.plaintext.begin(), p.plaintext.end(), p.input.begin());
        if (!p.in_place) {
            p.output.assign(length + guard_size, guard_byte);
        }
        p.tag.fill(guard_byte);
        return p;
    }

    unsigned burst_size() { return 1 + static_cast<unsigned>(rng_() % max_batch_jobs); }
    std::mt19937_64& rng() { return rng_; }

  private:
    std::mt19937_64 rng_;
    std::array<std::array<std::uint8_t, 32>, 5> keys_{};
};

// Seals a burst, checks it against libsodium, then opens it (in the same in/out-of-place
// layout) and checks the plaintext comes back. Both calls fetch `upcoming` as they go.
void seal_and_open_burst(BatchAead& engine, std::vector<Packet>& burst,
                         std::span<const PrefetchRange> upcoming = {}) {
    std::vector<AeadJob> jobs;
    for (auto& packet : burst) {
        jobs.push_back(packet.job());
    }
    engine.seal(jobs, upcoming);
    for (std::size_t i = 0; i < burst.size(); ++i) {
        Packet& packet = burst[i];
        Reference expected = sodium_reference(packet);
        ASSERT_EQ(test::to_hex(packet.result(), packet.length()), test::to_hex(expected.ciphertext))
            << "seal job " << i << " length " << packet.length();
        ASSERT_EQ(test::to_hex(packet.tag.data(), aead_tag_size), test::to_hex(expected.tag))
            << "tag job " << i << " length " << packet.length();
        ASSERT_TRUE(packet.guards_intact()) << "seal wrote past job " << i;
    }

    // Open: the ciphertext becomes the input.
    jobs.clear();
    for (auto& packet : burst) {
        if (!packet.in_place) {
            std::copy(packet.output.begin(), packet.output.begin() + packet.length(),
                      packet.input.begin());
            std::fill(packet.output.begin(), packet.output.begin() + packet.length(), 0);
        }
        jobs.push_back(packet.job());
    }
    JobMask mask = engine.open(jobs, upcoming);
    ASSERT_EQ(mask, all_jobs(static_cast<unsigned>(burst.size())));
    for (std::size_t i = 0; i < burst.size(); ++i) {
        Packet& packet = burst[i];
        ASSERT_EQ(test::to_hex(packet.result(), packet.length()), test::to_hex(packet.plaintext))
            << "open job " << i << " length " << packet.length();
        ASSERT_TRUE(packet.guards_intact()) << "open wrote past job " << i;
    }
}

class BackendTest : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        cpu_ = CpuFeatures::detect_hardware();
        engine_ = std::make_unique<BatchAead>(cpu_, BatchAead::Options{.force = GetParam()});
        if (!engine_->has(GetParam())) {
            GTEST_SKIP() << backend_name(GetParam()) << " not supported on this CPU ("
                         << cpu_.describe() << ")";
        }
    }

    CpuFeatures cpu_;
    std::unique_ptr<BatchAead> engine_;
};

// RFC 8439 §2.4.2: its nonce (00000000 0000004a 00000000) has WireGuard's shape, and the AEAD
// encrypts from block 1, the counter the RFC uses; so the ciphertext is a known answer for
// every backend's ChaCha20.
TEST_P(BackendTest, Rfc8439Section242Keystream) {
    auto key = test::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    std::string text =
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
        "future, sunscreen would be it.";
    std::vector<std::uint8_t> data(text.begin(), text.end());
    std::uint8_t tag[aead_tag_size];
    AeadJob job{key.data(),
                0x4a000000ULL,
                data.data(),
                data.data(),
                static_cast<std::uint32_t>(data.size()),
                tag};
    engine_->seal({&job, 1});
    EXPECT_EQ(
        test::to_hex(data),
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593d"
        "abcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16cc"
        "f806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d");
}

TEST_P(BackendTest, MatchesLibsodiumOnRandomBursts) {
    Generator generator(0x6d65736867617465ULL + static_cast<unsigned>(GetParam()));
    int jobs_checked = 0;
    for (int round = 0; round < 150; ++round) {
        std::vector<Packet> burst;
        unsigned size = generator.burst_size();
        for (unsigned i = 0; i < size; ++i) {
            burst.push_back(generator.packet(generator.length()));
        }
        seal_and_open_burst(*engine_, burst);
        if (HasFatalFailure()) {
            FAIL() << "round " << round;
        }
        jobs_checked += static_cast<int>(size);
    }
    EXPECT_GT(jobs_checked, 2000);
}

TEST_P(BackendTest, EveryLengthFrom0To300) {
    Generator generator(300);
    for (std::uint32_t start = 0; start <= 300; start += 64) {
        std::vector<Packet> burst;
        for (std::uint32_t length = start; length < start + 64 && length <= 300; ++length) {
            burst.push_back(generator.packet(length));
        }
        seal_and_open_burst(*engine_, burst);
        ASSERT_FALSE(HasFatalFailure()) << "lengths from " << start;
    }
}

TEST_P(BackendTest, BurstsOfEverySizeWithUniformLengths) {
    Generator generator(64);
    for (unsigned size = 1; size <= max_batch_jobs; ++size) {
        for (std::uint32_t length : {64u, 1420u}) {
            std::vector<Packet> burst;
            for (unsigned i = 0; i < size; ++i) {
                burst.push_back(generator.packet(length));
            }
            seal_and_open_burst(*engine_, burst);
            ASSERT_FALSE(HasFatalFailure()) << "burst of " << size << " x " << length;
        }
    }
}

TEST_P(BackendTest, LongJobsUpToMaximumLength) {
    Generator generator(65535);
    std::vector<Packet> burst;
    for (std::uint32_t length : {2048u, 4096u, 9000u, 16384u, 65535u, 17u, 65534u}) {
        burst.push_back(generator.packet(length));
    }
    seal_and_open_burst(*engine_, burst);
}

// A flipped bit anywhere (ciphertext, tag, or the counter the receiver uses) makes that job
// fail, zeroes its output, and leaves the other jobs of the burst authentic.
TEST_P(BackendTest, RejectsAnyFlippedBitAndKeepsTheRestOfTheBurst) {
    Generator generator(8439);
    enum class Flip { ciphertext, tag, counter };
    for (Flip flip : {Flip::ciphertext, Flip::tag, Flip::counter}) {
        for (int round = 0; round < 20; ++round) {
            unsigned size = generator.burst_size();
            std::vector<Packet> burst;
            for (unsigned i = 0; i < size; ++i) {
                std::uint32_t length = generator.length();
                burst.push_back(
                    generator.packet(flip == Flip::ciphertext ? std::max(length, 1u) : length));
            }
            std::vector<AeadJob> jobs;
            for (auto& packet : burst) {
                jobs.push_back(packet.job());
            }
            engine_->seal(jobs);

            unsigned victim = static_cast<unsigned>(generator.rng()() % size);
            Packet& bad = burst[victim];
            if (!bad.in_place) {
                std::copy(bad.output.begin(), bad.output.begin() + bad.length(), bad.input.begin());
            }
            auto bit = generator.rng()();
            switch (flip) {
                case Flip::ciphertext:
                    bad.input[bit % bad.length()] ^= static_cast<std::uint8_t>(1u << (bit % 8));
                    break;
                case Flip::tag:
                    bad.tag[bit % aead_tag_size] ^= static_cast<std::uint8_t>(1u << (bit % 8));
                    break;
                case Flip::counter:
                    bad.counter ^= std::uint64_t{1} << (bit % 64);
                    break;
            }
            jobs.clear();
            for (std::size_t i = 0; i < burst.size(); ++i) {
                Packet& packet = burst[i];
                if (!packet.in_place && i != victim) {
                    std::copy(packet.output.begin(), packet.output.begin() + packet.length(),
                              packet.input.begin());
                }
                if (!packet.in_place) {
                    std::fill(packet.output.begin(), packet.output.begin() + packet.length(), 0x77);
                }
                jobs.push_back(packet.job());
            }
            JobMask mask = engine_->open(jobs);
            EXPECT_EQ(mask, all_jobs(size) & ~(JobMask{1} << victim))
                << "flip kind " << static_cast<int>(flip) << " victim " << victim;
            EXPECT_TRUE(is_zero(bad.result(), bad.length())) << "failed job left output behind";
            for (std::size_t i = 0; i < burst.size(); ++i) {
                if (i != victim) {
                    EXPECT_EQ(test::to_hex(burst[i].result(), burst[i].length()),
                              test::to_hex(burst[i].plaintext));
                }
                EXPECT_TRUE(burst[i].guards_intact());
            }
        }
    }
}

// A worker seals or opens a burst while asking for the next one's memory: the results must not
// change, whether the next burst is another one, overlaps this one, or is far longer than the
// steps the call takes; and a forged job is still refused (the open then ends with its rest).
TEST_P(BackendTest, FetchingTheNextBurstWhileSealingOrOpeningChangesNothing) {
    Generator generator(1942);
    for (int round = 0; round < 30; ++round) {
        std::vector<Packet> burst, next;
        const unsigned size = generator.burst_size();
        for (unsigned i = 0; i < size; ++i) {
            burst.push_back(generator.packet(round % 3 == 0 ? 1420 : generator.length()));
            next.push_back(generator.packet(generator.length()));
        }
        std::vector<PrefetchRange> upcoming;
        for (Packet& packet : next) {
            upcoming.push_back({packet.input.data(), packet.length()});
        }
        if (round % 2 == 1) {  // this burst's own memory too, misaligned
            upcoming.push_back({burst[0].input.data() + 3, burst[0].length()});
        }
        seal_and_open_burst(*engine_, burst, upcoming);
        ASSERT_FALSE(HasFatalFailure()) << "round " << round;
    }

    std::vector<Packet> burst;
    for (unsigned i = 0; i < 32; ++i) {
        burst.push_back(generator.packet(1420));
    }
    std::vector<AeadJob> jobs;
    for (auto& packet : burst) {
        jobs.push_back(packet.job());
    }
    engine_->seal(jobs);
    for (auto& packet : burst) {
        if (!packet.in_place) {
            std::copy(packet.output.begin(), packet.output.begin() + packet.length(),
                      packet.input.begin());
        }
    }
    burst[5].tag[0] ^= 1;
    const std::vector<std::uint8_t> far(64 * 1024, 1);
    const PrefetchRange upcoming[] = {{far.data(), static_cast<std::uint32_t>(far.size())}};
    EXPECT_EQ(engine_->open(jobs, upcoming), all_jobs(32) & ~(JobMask{1} << 5));
    for (std::size_t i = 0; i < burst.size(); ++i) {
        if (i != 5) {
            EXPECT_EQ(test::to_hex(burst[i].result(), burst[i].length()),
                      test::to_hex(burst[i].plaintext));
        }
        EXPECT_TRUE(burst[i].guards_intact());
    }
    EXPECT_TRUE(is_zero(burst[5].result(), burst[5].length()));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendTest,
                         ::testing::Values(Backend::avx512, Backend::ipsecmb, Backend::sodium),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

TEST(BatchAeadEngine, AutomaticChoiceSplitsMixedBurstsAndStaysCorrect) {
    auto cpu = CpuFeatures::detect_hardware();
    BatchAead engine(cpu);
    if (engine.has(Backend::avx512) && engine.has(Backend::ipsecmb)) {
        EXPECT_EQ(engine.backend_for(64), Backend::avx512);
        EXPECT_EQ(engine.backend_for(BatchAead::default_multibuffer_max_length), Backend::avx512);
        EXPECT_EQ(engine.backend_for(1420), Backend::ipsecmb);
    }
    Generator generator(77);
    for (int round = 0; round < 50; ++round) {
        std::vector<Packet> burst;
        unsigned size = generator.burst_size();
        for (unsigned i = 0; i < size; ++i) {
            // 7:4:1 imix sizes and random ones: both sides of the threshold in one burst.
            static constexpr std::uint32_t imix[] = {64, 64,  64,  64,  64,  64,
                                                     64, 576, 576, 576, 576, 1420};
            burst.push_back(
                generator.packet(round % 2 ? imix[generator.rng()() % 12] : generator.length()));
        }
        seal_and_open_burst(engine, burst);
        ASSERT_FALSE(HasFatalFailure()) << "round " << round;
    }
}

TEST(BatchAeadEngine, UniformLongBurstsStayCorrect) {
    // A burst of only long jobs of one block count runs on the multi-buffer path as a whole.
    BatchAead engine(CpuFeatures::detect_hardware());
    Generator generator(1420);
    for (std::uint32_t length : {1420u, 1500u, 9000u}) {
        std::vector<Packet> burst;
        for (unsigned i = 0; i < 32; ++i) {
            burst.push_back(generator.packet(length));
        }
        seal_and_open_burst(engine, burst);
        ASSERT_FALSE(HasFatalFailure()) << "length " << length;
    }
}

TEST(BatchAeadEngine, PortableCpuUsesLibsodiumForEverything) {
    BatchAead engine(CpuFeatures::portable());
    EXPECT_FALSE(engine.has(Backend::avx512));
    EXPECT_FALSE(engine.has(Backend::ipsecmb));
    for (std::uint32_t length : {0u, 64u, 1420u, 65535u}) {
        EXPECT_EQ(engine.backend_for(length), Backend::sodium);
    }
    // Forcing a backend the CPU lacks falls back to the portable one rather than crashing.
    BatchAead forced(CpuFeatures::portable(), {.force = Backend::avx512});
    EXPECT_EQ(forced.backend_for(64), Backend::sodium);

    Generator generator(99);
    std::vector<Packet> burst;
    for (unsigned i = 0; i < 40; ++i) {
        burst.push_back(generator.packet(generator.length()));
    }
    seal_and_open_burst(engine, burst);
}

TEST(BatchAeadEngine, EnvironmentForcesThePortablePath) {
    ::setenv("MESHGATE_CRYPTO", "portable", 1);
    CpuFeatures forced = CpuFeatures::detect();
    ::unsetenv("MESHGATE_CRYPTO");
    EXPECT_FALSE(forced.has_avx512_core());
    EXPECT_EQ(forced.describe(), "portable");
    EXPECT_EQ(BatchAead(forced).backend_for(64), Backend::sodium);
}

TEST(BatchAeadEngine, BackendNamesRoundTrip) {
    for (Backend backend : {Backend::avx512, Backend::ipsecmb, Backend::sodium}) {
        EXPECT_EQ(backend_from_name(backend_name(backend)), backend);
    }
    EXPECT_FALSE(backend_from_name("batch").has_value());
}

}  // namespace
}  // namespace meshgate::crypto
