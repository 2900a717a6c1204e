// A DPDK environment for unit tests: EAL without hugepages, PCI or shared files, and one
// mempool. Initialised once per test binary (EAL cannot be initialised twice).
#pragma once

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mbuf.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace meshgate::test {

class EalEnvironment : public ::testing::Environment {
  public:
    void SetUp() override {
        // A file prefix per process, so ctest may run test processes in parallel.
        std::string prefix = "meshgate-unit-" + std::to_string(::getpid());
        std::vector<std::string> args = {
            "unit-test",   "--no-huge", "-m", "1024", "--no-pci",      "--no-shconf",
            "--log-level", "error",     "-l", "0",    "--file-prefix", prefix};
        std::vector<char*> argv;
        for (auto& arg : args) {
            argv.push_back(arg.data());
        }
        // A test that cannot get its environment must fail loudly, never skip quietly.
        if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
            std::fprintf(stderr, "unit test: rte_eal_init failed\n");
            std::exit(1);
        }
        pool_ = rte_pktmbuf_pool_create("unit_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        if (pool_ == nullptr) {
            std::fprintf(stderr, "unit test: mempool creation failed\n");
            std::exit(1);
        }
    }
    void TearDown() override {
        std::string runtime_dir = rte_eal_get_runtime_dir();
        rte_mempool_free(pool_);
        rte_eal_cleanup();
        // EAL leaves its per-prefix runtime directory behind; tests leave nothing.
        std::error_code ignored;
        std::filesystem::remove_all(runtime_dir, ignored);
    }
    static rte_mempool* pool() { return pool_; }

  private:
    static inline rte_mempool* pool_ = nullptr;
};

// An mbuf holding exactly `bytes`.
inline rte_mbuf* make_packet(const std::vector<std::uint8_t>& bytes) {
    rte_mbuf* packet = rte_pktmbuf_alloc(EalEnvironment::pool());
    if (packet == nullptr) {
        return nullptr;
    }
    void* data = rte_pktmbuf_append(packet, static_cast<std::uint16_t>(bytes.size()));
    if (data == nullptr) {
        rte_pktmbuf_free(packet);
        return nullptr;
    }
    if (!bytes.empty()) {
        std::memcpy(data, bytes.data(), bytes.size());
    }
    return packet;
}

inline std::vector<std::uint8_t> packet_bytes(const rte_mbuf* packet) {
    auto* data = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    return {data, data + rte_pktmbuf_data_len(packet)};
}

}  // namespace meshgate::test
