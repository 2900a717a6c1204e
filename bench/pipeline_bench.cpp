// The data plane's worker loop, measured: items_per_second = packets/s on one worker.
//
//   pipeline/decap/<size>/<peers>   RX -> classify -> decap (open, replay, anti-spoof) -> route,
//                                   which refuses (no route), so nothing is sealed again
//   pipeline/encap/<size>/<peers>   handoff ring (plaintext for a peer) -> encap (seal) -> TX
//   pipeline/hub/<size>/<peers>     RX -> ... -> decap -> route to another peer -> encap -> TX
//   pipeline/crypto_ceiling/<size>  the batch engine alone: one open and one seal per packet
//                                   on the same packets, bursts of 32
//
// size is the inner IP packet (64 or 1420 bytes). Traffic is pre-encrypted outside the timed
// region by simulated clients (tests/support/hub_fixture.hpp), spread uniformly over the
// peers; only worker_iteration() is timed (manual time, thread CPU time), so generating traffic and
// freeing transmitted frames cost nothing here.
#include <benchmark/benchmark.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <cstdlib>

#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/support/hub_fixture.hpp"

namespace meshgate::bench {
namespace {

using test::HubFixture;

enum class Path { decap, encap, hub };

// The timed regions are measured in this thread's CPU time, not wall-clock TSC: on a shared
// machine a worker that is preempted mid-chunk would otherwise be charged for someone else's
// work, and the pipeline and ceiling rows of one run would not be comparable.
class CpuStopwatch {
  public:
    CpuStopwatch() { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start_); }
    double seconds() const {
        timespec now;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
        return static_cast<double>(now.tv_sec - start_.tv_sec) +
               static_cast<double>(now.tv_nsec - start_.tv_nsec) * 1e-9;
    }

  private:
    timespec start_;
};
constexpr unsigned chunk_bursts = 64;  // bursts queued per timed run (2048 packets)

// One fixture per peer count, built once (100000 peers take a while to key); released
// before EAL shuts down.
std::map<unsigned, std::unique_ptr<HubFixture>> fixtures;

HubFixture& fixture(unsigned peers) {
    auto& slot = fixtures[peers];
    if (!slot) {
        slot = std::make_unique<HubFixture>(
            HubFixture::Options{.peers = peers, .session_capacity = std::max(peers, 1024u)});
    }
    return *slot;
}

// A burst of traffic for `path`, ready to hand to the worker.
std::vector<rte_mbuf*> make_burst(HubFixture& hub, Path path, unsigned size, unsigned peers,
                                  std::mt19937& rng) {
    std::vector<rte_mbuf*> burst;
    for (unsigned i = 0; i < dataplane::burst_size; ++i) {
        unsigned from = static_cast<unsigned>(rng() % peers);
        unsigned to = (from + 1) % peers;
        auto& client = hub.client(from);
        dataplane::IpAddress destination =
            path == Path::decap ? test::ipv4(192, 0, 2, 1) : hub.client(to).tunnel_address;
        auto inner = HubFixture::inner_udp(client.tunnel_address, destination, size);
        if (path == Path::encap) {
            rte_mbuf* packet = rte_pktmbuf_alloc(HubFixture::pool());
            std::memcpy(rte_pktmbuf_append(packet, static_cast<std::uint16_t>(inner.size())),
                        inner.data(), inner.size());
            dataplane::packet_meta(packet) = {to, dataplane::HandoffStage::encap};
            burst.push_back(packet);
        } else {
            burst.push_back(hub.client_frame(client, inner));
        }
    }
    return burst;
}

void run_pipeline(benchmark::State& state, Path path, unsigned size, unsigned peers) {
    HubFixture& hub = fixture(peers);
    dataplane::WorkerContext& worker = hub.worker(0);
    std::mt19937 rng(peers * 31 + size);
    dataplane::WorkerCounters injector;
    std::uint64_t packets = 0;
    const std::uint64_t drops_before = worker.counters.total_drops();
    const std::uint64_t expected_drops_before = worker.counters.dropped(dataplane::Drop::no_route);

    // One iteration = one chunk of 64 bursts, all queued first (as a NIC would have them),
    // then the worker runs until it has taken them all; only that is timed.
    for (auto _ : state) {
        std::vector<std::vector<rte_mbuf*>> bursts;
        for (unsigned b = 0; b < chunk_bursts; ++b) {
            bursts.push_back(make_burst(hub, path, size, peers, rng));
        }
        for (auto& burst : bursts) {
            if (path == Path::encap) {
                hub.shared().handoff->send(0, burst.data(), static_cast<unsigned>(burst.size()),
                                           injector);
            } else {
                hub.inject(0, burst.data(), static_cast<unsigned>(burst.size()));
            }
            packets += burst.size();
        }
        const CpuStopwatch stopwatch;
        while (dataplane::worker_iteration(worker) != 0) {
        }
        state.SetIterationTime(stopwatch.seconds());
        for (rte_mbuf* sent : hub.transmitted(0)) {
            rte_pktmbuf_free(sent);
        }
    }
    // Only decap's refusals are expected; anything else means the benchmark measured drops.
    std::uint64_t unexpected =
        (worker.counters.total_drops() - drops_before) -
        (worker.counters.dropped(dataplane::Drop::no_route) - expected_drops_before);
    if (unexpected != 0) {
        state.SkipWithError("worker dropped benchmark packets");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(packets));
    state.counters["peers"] = peers;
}

// The batch engine alone on the same packets: a chunk as large as the pipeline's (so the
// same data footprint, mostly out of L1/L2), each burst opened and then sealed again (which
// restores the ciphertext, so the chunk serves every iteration).
void run_crypto_ceiling(benchmark::State& state, unsigned size) {
    HubFixture& hub = fixture(1000);
    std::mt19937 rng(size);
    std::vector<std::vector<rte_mbuf*>> chunk;
    std::vector<std::vector<crypto::AeadJob>> jobs;
    for (unsigned b = 0; b < chunk_bursts; ++b) {
        chunk.push_back(make_burst(hub, Path::hub, size, 1000, rng));
        auto& burst_jobs = jobs.emplace_back();
        for (rte_mbuf* frame : chunk.back()) {
            dataplane::parse_outer(frame);
            std::uint8_t* message = dataplane::udp_payload(frame);
            std::uint32_t length = dataplane::udp_payload_length(frame) - 32;
            std::uint32_t index;
            std::uint64_t counter;
            std::memcpy(&index, message + 4, 4);
            std::memcpy(&counter, message + 8, 8);
            dataplane::Keypair* keypair;
            hub.shared().sessions->lookup(&index, &keypair, 1);
            burst_jobs.push_back({keypair->receive_key.data(), counter, message + 16, message + 16,
                                  length, message + 16 + length});
        }
    }
    crypto::BatchAead& engine = *hub.worker(0).crypto;
    std::int64_t packets = 0;
    for (auto _ : state) {
        const CpuStopwatch stopwatch;
        crypto::JobMask failed = 0;
        for (auto& burst_jobs : jobs) {
            failed |= ~engine.open(burst_jobs) &
                      crypto::all_jobs(static_cast<unsigned>(burst_jobs.size()));
            engine.seal(burst_jobs);
            packets += static_cast<std::int64_t>(burst_jobs.size());
        }
        state.SetIterationTime(stopwatch.seconds());
        if (failed != 0) {
            state.SkipWithError("ceiling packets failed to open");
            break;
        }
    }
    for (auto& burst : chunk) {
        rte_pktmbuf_free_bulk(burst.data(), static_cast<unsigned>(burst.size()));
    }
    state.SetItemsProcessed(packets);
}

void register_benchmarks() {
    for (unsigned size : {64u, 1420u}) {
        benchmark::RegisterBenchmark(("pipeline/crypto_ceiling/" + std::to_string(size)).c_str(),
                                     [size](benchmark::State& s) { run_crypto_ceiling(s, size); })
            ->UseManualTime();
        for (auto [path, name] : {std::pair{Path::decap, "decap"}, std::pair{Path::encap, "encap"},
                                  std::pair{Path::hub, "hub"}}) {
            for (unsigned peers : {1u, 1000u, 100000u}) {
                std::string label = std::string("pipeline/") + name + "/" + std::to_string(size) +
                                    "/" + std::to_string(peers);
                Path p = path;
                benchmark::RegisterBenchmark(label.c_str(), [p, size, peers](benchmark::State& s) {
                    run_pipeline(s, p, size, peers);
                })->UseManualTime();
            }
        }
    }
}

}  // namespace
}  // namespace meshgate::bench

int main(int argc, char** argv) {
    // EAL without PCI: the benchmark feeds the worker from memory. Without hugepages by
    // default (CI machines have none); MESHGATE_BENCH_HUGEPAGES=1 uses 2 MiB pages, as a
    // production gateway would, so tables and packet pools stop missing the TLB.
    std::string prefix = "meshgate-bench-" + std::to_string(::getpid());
    const char* hugepages = std::getenv("MESHGATE_BENCH_HUGEPAGES");
    const bool use_hugepages = hugepages != nullptr && std::string(hugepages) == "1";
    std::vector<const char*> eal_args = {
        "pipeline_bench", "-m", "4096", "--no-pci",      "--no-shconf", "--log-level",
        "error",          "-l", "0",    "--file-prefix", prefix.c_str()};
    if (!use_hugepages) {
        eal_args.push_back("--no-huge");
    }
    if (rte_eal_init(static_cast<int>(eal_args.size()), const_cast<char**>(eal_args.data())) < 0) {
        std::fprintf(
            stderr, "pipeline_bench: rte_eal_init failed%s\n",
            use_hugepages ? " (MESHGATE_BENCH_HUGEPAGES=1: are 2 MiB pages reserved?)" : "");
        return 1;
    }
    meshgate::bench::register_benchmarks();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    meshgate::bench::fixtures.clear();
    std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
    return 0;
}
