// Runs a fuzz target over every file of its corpus (and over a few thousand mutations of
// them), without libFuzzer: so the targets are exercised in every CI run, with any compiler.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIRECTORY\n", argv[0]);
        return 2;
    }
    std::vector<std::vector<std::uint8_t>> corpus;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
        std::ifstream in(entry.path(), std::ios::binary);
        corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (corpus.empty()) {
        std::fprintf(stderr, "empty corpus %s\n", argv[1]);
        return 1;
    }
    std::mt19937 rng(20261124);
    std::size_t runs = 0;
    for (const auto& input : corpus) {
        LLVMFuzzerTestOneInput(input.data(), input.size());
        ++runs;
        // Byte flips, truncations and extensions of each seed.
        for (int mutation = 0; mutation < 2000; ++mutation) {
            std::vector<std::uint8_t> mutated = input;
            switch (rng() % 3) {
                case 0:
                    if (!mutated.empty()) {
                        mutated[rng() % mutated.size()] ^=
                            static_cast<std::uint8_t>(1u << (rng() % 8));
                    }
                    break;
                case 1:
                    mutated.resize(mutated.empty() ? 0 : rng() % mutated.size());
                    break;
                default:
                    mutated.push_back(static_cast<std::uint8_t>(rng()));
            }
            LLVMFuzzerTestOneInput(mutated.data(), mutated.size());
            ++runs;
        }
    }
    std::printf("%zu inputs, no crash\n", runs);
    return 0;
}
