// What the fuzz targets that need DPDK share: EAL for the process, and property checks.
#pragma once

#include <rte_eal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace meshgate::fuzz {

// A property the target checks, beyond not crashing: a trap libFuzzer reports as a crash.
inline void check(bool property) {
    if (!property) {
        __builtin_trap();
    }
}

// EAL without hugepages, PCI or shared files, on lcore 0, under a prefix of this process's own;
// its runtime directory is removed at exit. Aborts when EAL refuses.
class FuzzEal {
  public:
    FuzzEal(const std::string& name, unsigned memory_mb) {
        const std::string prefix = "meshgate-" + name + "-" + std::to_string(::getpid());
        std::vector<std::string> args = {name,
                                         "--no-huge",
                                         "-m",
                                         std::to_string(memory_mb),
                                         "--no-pci",
                                         "--no-shconf",
                                         "--log-level",
                                         "error",
                                         "-l",
                                         "0",
                                         "--file-prefix",
                                         prefix};
        std::vector<char*> argv;
        for (auto& arg : args) {
            argv.push_back(arg.data());
        }
        if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
            std::abort();
        }
        runtime_dir_ = rte_eal_get_runtime_dir();
    }
    ~FuzzEal() {
        rte_eal_cleanup();
        std::error_code ignored;
        std::filesystem::remove_all(runtime_dir_, ignored);
    }
    FuzzEal(const FuzzEal&) = delete;
    FuzzEal& operator=(const FuzzEal&) = delete;

  private:
    std::string runtime_dir_;
};

}  // namespace meshgate::fuzz
