// Crypto benchmarks. items_per_second = packets (or operations) per second, one thread.
//
//   seal/<backend>/<size>, open/<backend>/<size>
//     backend: batch (the engine's own per-job choice), avx512, ipsecmb, sodium (forced)
//     size: 64 128 256 512 1024 1420, or imix (bursts of 32 drawn 7:4:1 from 64/576/1420 B)
//     Bursts of 32 jobs, each with its own key (one peer per packet, the worst case).
//   open_paced/avx512/<size>: open/avx512 while fetching the next burst's ciphertext between
//     its ChaCha20 blocks, as decap does (crypto/paced_prefetch.hpp), paired burst by burst
//     with a plain open of the same burst: `against_plain` is the median of the paced rate
//     over the plain one. The lines are cached already, so it is what pacing costs the open.
//   open_paced_cold/avx512/<size>: what pacing gains. 64 bursts, each packet in its own 2 KiB
//     buffer as in an mbuf pool, opened in place burst after burst from memory (restored and
//     flushed from the caches before every pass, as frames a NIC wrote); passes with and
//     without the next burst's bytes handed to each open alternate, and `against_plain` is
//     the paced passes' median rate over the plain ones'.
//   x25519/batch/<n>: dh_batch() over n independent DH jobs (distinct keys and points);
//     items = DH operations, comparable with x25519/dh (libsodium, one at a time)
//   x25519/dh, hmac/blake2s, blake2s/{meshgate,openssl}/<size>
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "crypto/batch_aead.hpp"
#include "crypto/blake2s.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::crypto {
namespace {

constexpr unsigned burst_size = 32;
constexpr unsigned bursts_in_flight = 4;  // cycle over 128 packets: some, not all, in L1

// Pre-built bursts: keys, buffers and sealed copies for the open benchmarks.
struct Workload {
    struct Packet {
        std::array<std::uint8_t, 32> key;
        std::uint64_t counter;
        std::vector<std::uint8_t> plaintext, ciphertext, scratch;
        std::array<std::uint8_t, aead_tag_size> tag;
    };
    std::vector<Packet> packets;
    std::uint64_t bytes_per_round = 0;

    Workload(const std::vector<std::uint32_t>& lengths, BatchAead& sealer) {
        std::mt19937_64 rng(42);
        for (std::uint32_t length : lengths) {
            Packet p;
            for (auto& b : p.key) {
                b = static_cast<std::uint8_t>(rng());
            }
            p.counter = rng() >> 8;
            p.plaintext.resize(length);
            for (auto& b : p.plaintext) {
                b = static_cast<std::uint8_t>(rng());
            }
            p.ciphertext = p.plaintext;
            p.scratch.resize(length);
            packets.push_back(std::move(p));
            bytes_per_round += length;
        }
        for (std::size_t first = 0; first < packets.size(); first += burst_size) {
            auto jobs = seal_jobs(first);
            sealer.seal(jobs);
        }
    }

    std::vector<AeadJob> seal_jobs(std::size_t first) {
        std::vector<AeadJob> jobs;
        for (std::size_t i = first; i < first + burst_size && i < packets.size(); ++i) {
            Packet& p = packets[i];
            jobs.push_back({p.key.data(), p.counter, p.ciphertext.data(), p.ciphertext.data(),
                            static_cast<std::uint32_t>(p.ciphertext.size()), p.tag.data()});
        }
        return jobs;
    }
};

std::vector<std::uint32_t> lengths_for(const std::string& size) {
    std::vector<std::uint32_t> lengths;
    if (size == "imix") {
        std::mt19937_64 rng(7);
        static constexpr std::uint32_t draw[] = {64, 64,  64,  64,  64,  64,
                                                 64, 576, 576, 576, 576, 1420};
        for (unsigned i = 0; i < burst_size * bursts_in_flight; ++i) {
            lengths.push_back(draw[rng() % std::size(draw)]);
        }
    } else {
        lengths.assign(burst_size * bursts_in_flight, static_cast<std::uint32_t>(std::stoul(size)));
    }
    return lengths;
}

// Job arrays built once: the benchmarks measure crypto, not job setup. Opening writes to
// scratch, so the ciphertext serves every iteration.
std::vector<std::vector<AeadJob>> job_bursts(Workload& workload, bool open) {
    std::vector<std::vector<AeadJob>> bursts;
    for (std::size_t first = 0; first < workload.packets.size(); first += burst_size) {
        auto jobs = workload.seal_jobs(first);
        if (open) {
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                jobs[i].output = workload.packets[first + i].scratch.data();
            }
        }
        bursts.push_back(std::move(jobs));
    }
    return bursts;
}

void run_aead(benchmark::State& state, bool open, std::optional<Backend> backend,
              const std::string& size) {
    auto cpu = CpuFeatures::detect();
    BatchAead engine(cpu, BatchAead::Options{.force = backend});
    if (backend && !engine.has(*backend)) {
        state.SkipWithError("backend not supported on this CPU");
        return;
    }
    BatchAead reference(cpu, BatchAead::Options{.force = Backend::sodium});
    Workload workload(lengths_for(size), reference);

    auto bursts = job_bursts(workload, open);

    std::uint64_t packets = 0, failures = 0;
    std::size_t next = 0;
    for (auto _ : state) {
        auto& jobs = bursts[next];
        next = (next + 1) % bursts.size();
        if (open) {
            failures += static_cast<std::uint64_t>(jobs.size()) -
                        static_cast<std::uint64_t>(__builtin_popcountll(engine.open(jobs)));
        } else {
            engine.seal(jobs);
        }
        packets += jobs.size();
    }
    if (open && failures != 0) {
        state.SkipWithError("open failed to authenticate benchmark packets");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(packets));
    state.SetBytesProcessed(
        static_cast<std::int64_t>(workload.bytes_per_round * packets / workload.packets.size()));
    state.SetLabel(backend ? std::string(backend_name(*backend)) : "auto");
}

// The middle value (the upper one of an even count); `values` is reordered. Not empty.
double median(std::vector<double>& values) {
    std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
    return values[values.size() / 2];
}

// Pacing's cost, measured pair by pair (see the header): which open of a pair runs first
// alternates, as the second reads a ciphertext the first has just brought into L1.
void run_open_paced(benchmark::State& state, const std::string& size) {
    auto cpu = CpuFeatures::detect();
    BatchAead engine(cpu, BatchAead::Options{.force = Backend::avx512});
    if (!engine.has(Backend::avx512)) {
        state.SkipWithError("backend not supported on this CPU");
        return;
    }
    BatchAead reference(cpu, BatchAead::Options{.force = Backend::sodium});
    Workload workload(lengths_for(size), reference);
    auto bursts = job_bursts(workload, true);
    std::vector<std::vector<PrefetchRange>> upcoming(bursts.size());
    for (std::size_t b = 0; b < bursts.size(); ++b) {
        for (const AeadJob& job : bursts[(b + 1) % bursts.size()]) {
            upcoming[b].push_back({job.input, job.length});
        }
    }
    using Clock = std::chrono::steady_clock;
    std::vector<double> ratios;
    std::uint64_t packets = 0, failures = 0;
    std::size_t next = 0;
    bool paced_first = false;
    for (auto _ : state) {
        auto& jobs = bursts[next];
        const std::vector<PrefetchRange>& ranges = upcoming[next];
        next = (next + 1) % bursts.size();
        paced_first = !paced_first;
        Clock::duration plain{}, paced{};
        JobMask authentic = ~JobMask{0};
        for (bool with_pacing : {paced_first, !paced_first}) {
            const auto start = Clock::now();
            authentic &= with_pacing ? engine.open(jobs, ranges) : engine.open(jobs);
            (with_pacing ? paced : plain) = Clock::now() - start;
        }
        failures += static_cast<std::uint64_t>(jobs.size()) -
                    static_cast<std::uint64_t>(__builtin_popcountll(authentic));
        ratios.push_back(std::chrono::duration<double>(plain).count() /
                         std::chrono::duration<double>(paced).count());
        state.SetIterationTime(std::chrono::duration<double>(paced).count());
        packets += jobs.size();
    }
    if (failures != 0) {
        state.SkipWithError("open failed to authenticate benchmark packets");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(packets));
    if (!ratios.empty()) {
        state.counters["against_plain"] = median(ratios);
    }
}

// See the header. A fixed number of passes: each first restores and flushes 4 MiB, untimed.
void run_open_paced_cold(benchmark::State& state, std::uint32_t size) {
    constexpr unsigned bursts = 64;
    constexpr std::size_t buffer_size = 2048;
    constexpr std::size_t headroom = 128;  // where a frame's data starts in an mbuf
    auto cpu = CpuFeatures::detect();
    BatchAead engine(cpu, BatchAead::Options{.force = Backend::avx512});
    if (!engine.has(Backend::avx512)) {
        state.SkipWithError("backend not supported on this CPU");
        return;
    }
    const unsigned packets = bursts * burst_size;
    std::vector<std::uint8_t> buffers(packets * buffer_size);
    std::vector<std::array<std::uint8_t, 32>> keys(packets);
    std::mt19937_64 rng(size);
    for (auto& key : keys) {
        for (auto& b : key) {
            b = static_cast<std::uint8_t>(rng());
        }
    }
    std::vector<std::vector<AeadJob>> jobs(bursts);
    for (unsigned i = 0; i < packets; ++i) {
        std::uint8_t* data = buffers.data() + i * buffer_size + headroom;
        jobs[i / burst_size].push_back({keys[i].data(), i, data, data, size, data + size});
    }
    for (auto& burst : jobs) {
        engine.seal(burst);
    }
    const std::vector<std::uint8_t> sealed = buffers;
    std::vector<std::vector<PrefetchRange>> upcoming(bursts);
    for (unsigned b = 0; b + 1 < bursts; ++b) {
        for (const AeadJob& job : jobs[b + 1]) {
            upcoming[b].push_back(
                {job.input, job.length + static_cast<std::uint32_t>(aead_tag_size)});
        }
    }
    std::vector<double> plain, paced;
    std::uint64_t failures = 0;
    std::int64_t opened = 0;
    for (auto _ : state) {
        const bool pacing = paced.size() < plain.size();
        std::memcpy(buffers.data(), sealed.data(), buffers.size());
        for (std::size_t offset = 0; offset < buffers.size(); offset += 64) {
            _mm_clflush(buffers.data() + offset);
        }
        _mm_mfence();
        const auto start = std::chrono::steady_clock::now();
        for (unsigned b = 0; b < bursts; ++b) {
            const JobMask authentic =
                pacing ? engine.open(jobs[b], upcoming[b]) : engine.open(jobs[b]);
            failures += burst_size - static_cast<unsigned>(__builtin_popcountll(authentic));
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        (pacing ? paced : plain).push_back(seconds);
        state.SetIterationTime(seconds);
        opened += packets;
    }
    if (failures != 0) {
        state.SkipWithError("open failed to authenticate benchmark packets");
    }
    state.SetItemsProcessed(opened);
    if (!paced.empty()) {
        state.counters["against_plain"] = median(plain) / median(paced);
    }
}

void register_aead_benchmarks() {
    struct Choice {
        const char* name;
        std::optional<Backend> backend;
    };
    const Choice choices[] = {{"batch", std::nullopt},
                              {"avx512", Backend::avx512},
                              {"ipsecmb", Backend::ipsecmb},
                              {"sodium", Backend::sodium}};
    for (bool open : {false, true}) {
        for (const char* size : {"64", "128", "256", "512", "1024", "1420", "imix"}) {
            for (const Choice& choice : choices) {
                std::string name = std::string(open ? "open/" : "seal/") + choice.name + "/" + size;
                auto backend = choice.backend;
                std::string size_name = size;
                benchmark::RegisterBenchmark(name.c_str(),
                                             [open, backend, size_name](benchmark::State& state) {
                                                 run_aead(state, open, backend, size_name);
                                             });
            }
        }
    }
    for (const char* size : {"64", "128", "256", "512", "1024", "1420", "imix"}) {
        const std::string size_name = size;
        benchmark::RegisterBenchmark(
            ("open_paced/avx512/" + size_name).c_str(),
            [size_name](benchmark::State& state) { run_open_paced(state, size_name); })
            ->UseManualTime();
    }
    for (std::uint32_t size : {64u, 1420u}) {
        benchmark::RegisterBenchmark(
            ("open_paced_cold/avx512/" + std::to_string(size)).c_str(),
            [size](benchmark::State& state) { run_open_paced_cold(state, size); })
            ->UseManualTime()
            ->Iterations(200);
    }
}

void x25519_dh(benchmark::State& state) {
    auto a = generate_private_key();
    auto b = derive_public_key(generate_private_key());
    SharedSecret out;
    for (auto _ : state) {
        benchmark::DoNotOptimize(dh(out, a, b));
    }
    state.SetItemsProcessed(state.iterations());
}

void x25519_batch(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<PrivateKey> keys(n);
    std::vector<PublicKey> points(n);
    std::vector<SharedSecret> out(n);
    std::vector<DhJob> jobs;
    for (std::size_t i = 0; i < n; ++i) {
        keys[i] = generate_private_key();
        points[i] = derive_public_key(generate_private_key());
        jobs.push_back(DhJob::shared_secret(out[i], keys[i], points[i]));
    }
    const auto cpu = CpuFeatures::detect();
    for (auto _ : state) {
        dh_batch(jobs, cpu);
        benchmark::DoNotOptimize(jobs.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

void hmac_blake2s(benchmark::State& state) {
    std::uint8_t key[32] = {1}, input[33] = {2}, out[32];
    for (auto _ : state) {
        hmac(std::span<std::uint8_t, 32>(out), key, input);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}

// Our BLAKE2s against OpenSSL's, on handshake-sized inputs: the reason blake2s.cpp is ours.
void blake2s_meshgate(benchmark::State& state) {
    std::vector<std::uint8_t> input(static_cast<std::size_t>(state.range(0)), 3);
    Hash out;
    for (auto _ : state) {
        hash(out, input);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}

void blake2s_openssl(benchmark::State& state) {
    std::vector<std::uint8_t> input(static_cast<std::size_t>(state.range(0)), 3);
    std::uint8_t out[32];
    const EVP_MD* md = EVP_blake2s256();
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    for (auto _ : state) {
        unsigned int size = 0;
        EVP_DigestInit_ex(context, md, nullptr);
        EVP_DigestUpdate(context, input.data(), input.size());
        EVP_DigestFinal_ex(context, out, &size);
        benchmark::DoNotOptimize(out);
    }
    EVP_MD_CTX_free(context);
    state.SetItemsProcessed(state.iterations());
}

}  // namespace
}  // namespace meshgate::crypto

BENCHMARK(meshgate::crypto::x25519_dh)->Name("x25519/dh");
BENCHMARK(meshgate::crypto::x25519_batch)->Name("x25519/batch")->Arg(1)->Arg(8)->Arg(32);
BENCHMARK(meshgate::crypto::hmac_blake2s)->Name("hmac/blake2s");
BENCHMARK(meshgate::crypto::blake2s_meshgate)
    ->Name("blake2s/meshgate")
    ->Arg(32)
    ->Arg(116)
    ->Arg(1024);
BENCHMARK(meshgate::crypto::blake2s_openssl)->Name("blake2s/openssl")->Arg(32)->Arg(116)->Arg(1024);

int main(int argc, char** argv) {
    meshgate::crypto::register_aead_benchmarks();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
