// What a cold cache line costs on this machine: the yardstick for the data path's per-peer
// state (pipeline/hub/<size>/100000 against /1000, bench/RESULTS.md).
//
//   memory/chase/<MiB>         one load at a time, each address read from the line before:
//                              the latency of a line at that footprint
//   memory/independent/<MiB>   loads whose addresses are all known, software-prefetched
//                              `prefetch_ahead` loads ahead, as the data path prefetches a
//                              burst: how many lines a second one core can bring in
//   memory/line_pairs/<MiB>    the same, each load reading both lines of an aligned 128-byte
//                              pair: what a second line beside the first costs
//
// items_per_second = lines loaded per second (a pair counts once). The buffer is touched
// before timing and asked for transparent huge pages, so the figures are the caches' and
// memory's, not the TLB's; footprints from 1 MiB (in L2) to 256 MiB (far past the L3).
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

namespace {

constexpr std::size_t line = 64;
constexpr unsigned prefetch_ahead = 16;
constexpr std::size_t loads_per_iteration = 1 << 16;

// The run's buffer: state.range(0) MiB, touched, with huge pages where the kernel gives them,
// unmapped when the run ends. Empty (and the run skipped) when it cannot be had.
class Footprint {
  public:
    explicit Footprint(benchmark::State& state)
        : bytes_(static_cast<std::size_t>(state.range(0)) << 20) {
        void* memory =
            mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            state.SkipWithError("mmap failed");
            return;
        }
        madvise(memory, bytes_, MADV_HUGEPAGE);
        std::memset(memory, 1, bytes_);
        memory_ = static_cast<std::uint8_t*>(memory);
    }
    ~Footprint() {
        if (memory_ != nullptr) {
            munmap(memory_, bytes_);
        }
    }
    Footprint(const Footprint&) = delete;
    Footprint& operator=(const Footprint&) = delete;

    std::uint8_t* memory() const { return memory_; }
    std::size_t bytes() const { return bytes_; }

  private:
    std::size_t bytes_;
    std::uint8_t* memory_ = nullptr;
};

// Random line offsets within `bytes`, aligned to `stride` (a line, or a pair of lines).
std::vector<std::uint32_t> random_lines(std::size_t bytes, std::size_t stride) {
    std::mt19937 rng(1);
    std::vector<std::uint32_t> lines(loads_per_iteration);
    for (auto& offset : lines) {
        offset = static_cast<std::uint32_t>(rng() % (bytes / stride));
    }
    return lines;
}

void chase(benchmark::State& state) {
    const Footprint footprint(state);
    std::uint8_t* memory = footprint.memory();
    if (memory == nullptr) {
        return;
    }
    const std::size_t bytes = footprint.bytes();
    // A single cycle through every line in random order: each load's address is the one
    // before it's value, so no two loads overlap.
    std::vector<std::uint32_t> order(bytes / line);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(2));
    for (std::size_t i = 0; i < order.size(); ++i) {
        const std::uint64_t next = std::uint64_t{order[(i + 1) % order.size()]} * line;
        std::memcpy(memory + std::uint64_t{order[i]} * line, &next, sizeof next);
    }
    std::uint64_t at = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < loads_per_iteration; ++i) {
            std::memcpy(&at, memory + at, sizeof at);
        }
        benchmark::DoNotOptimize(at);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * loads_per_iteration));
}

template <std::size_t Stride>
void independent(benchmark::State& state) {
    const Footprint footprint(state);
    std::uint8_t* memory = footprint.memory();
    if (memory == nullptr) {
        return;
    }
    const std::vector<std::uint32_t> lines = random_lines(footprint.bytes(), Stride);
    const auto address = [&](std::size_t i) { return memory + std::uint64_t{lines[i]} * Stride; };
    std::uint64_t sum = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < loads_per_iteration; ++i) {
            if (i + prefetch_ahead < loads_per_iteration) {
                _mm_prefetch(reinterpret_cast<const char*>(address(i + prefetch_ahead)),
                             _MM_HINT_T0);
            }
            std::uint64_t value;
            std::memcpy(&value, address(i), sizeof value);
            sum += value;
            if constexpr (Stride == 2 * line) {
                std::memcpy(&value, address(i) + line, sizeof value);
                sum += value;
            }
        }
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * loads_per_iteration));
}

void footprints(benchmark::internal::Benchmark* benchmark) {
    for (int mebibytes : {1, 4, 16, 64, 256}) {
        benchmark->Arg(mebibytes);
    }
}

BENCHMARK(chase)->Name("memory/chase")->Apply(footprints);
BENCHMARK(independent<line>)->Name("memory/independent")->Apply(footprints);
BENCHMARK(independent<2 * line>)->Name("memory/line_pairs")->Apply(footprints);

}  // namespace

BENCHMARK_MAIN();
