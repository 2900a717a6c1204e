// Table memory: zeroed and writable at every size; without EAL hugepages (as here), a table of
// 2 MiB or more is a private mapping on a 2 MiB boundary advised for huge pages, and a smaller
// one comes from DPDK's heap; each goes back where it came from.
#include "dataplane/table_memory.hpp"

#include <gtest/gtest.h>
#include <rte_common.h>
#include <rte_malloc.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::size_t huge_page = std::size_t{2} << 20;

bool all_zero(const void* memory, std::size_t bytes) {
    const auto* begin = static_cast<const std::uint8_t*>(memory);
    return std::all_of(begin, begin + bytes, [](std::uint8_t byte) { return byte == 0; });
}

// The flags /proc/self/smaps gives the mapping that starts at `start` ("hg" = MADV_HUGEPAGE);
// empty when no mapping starts there.
std::string vm_flags_of(const void* start) {
    std::ostringstream wanted;
    wanted << std::hex << reinterpret_cast<std::uintptr_t>(start) << '-';
    std::ifstream smaps("/proc/self/smaps");
    bool inside = false;
    for (std::string line; std::getline(smaps, line);) {
        if (line.rfind(wanted.str(), 0) == 0) {
            inside = true;
        } else if (inside && line.rfind("VmFlags:", 0) == 0) {
            return line;
        }
    }
    return {};
}

TEST(TableMemory, ALargeTableIsAHugePageAlignedMappingAdvisedForHugePages) {
    ASSERT_EQ(rte_eal_has_hugepages(), 0) << "the unit tests run EAL with --no-huge";
    const std::size_t bytes = 5 * huge_page + 4096 + 64;  // not a multiple of the page
    void* memory = allocate_table_memory("table_memory_test", bytes, SOCKET_ID_ANY);
    ASSERT_NE(memory, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(memory) % huge_page, 0u);
    EXPECT_TRUE(all_zero(memory, bytes));
    std::fill_n(static_cast<std::uint8_t*>(memory), bytes, 0xA5);  // all of it is writable
    // A private mapping of its own, not DPDK's heap: DPDK cannot say where it lives.
    EXPECT_EQ(rte_mem_virt2memseg_list(memory), nullptr);
    EXPECT_NE(vm_flags_of(memory).find(" hg"), std::string::npos) << vm_flags_of(memory);
    free_table_memory(memory, bytes);
    EXPECT_EQ(vm_flags_of(memory), "") << "the mapping is gone";
}

TEST(TableMemory, ASmallTableComesFromDpdksHeap) {
    const std::size_t bytes = huge_page - 64;
    void* memory = allocate_table_memory("table_memory_test", bytes, SOCKET_ID_ANY);
    ASSERT_NE(memory, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(memory) % RTE_CACHE_LINE_SIZE, 0u);
    EXPECT_TRUE(all_zero(memory, bytes));
    EXPECT_NE(rte_mem_virt2memseg_list(memory), nullptr);
    rte_malloc_socket_stats stats_before{}, stats_after{};
    rte_malloc_get_socket_stats(0, &stats_before);
    free_table_memory(memory, bytes);
    rte_malloc_get_socket_stats(0, &stats_after);
    EXPECT_LT(stats_after.heap_allocsz_bytes, stats_before.heap_allocsz_bytes);
}

TEST(TableMemory, NothingToFreeIsNothing) {
    free_table_memory(nullptr, 0);
    free_table_memory(nullptr, 8 * huge_page);
}

}  // namespace
}  // namespace meshgate::dataplane
