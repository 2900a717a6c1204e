#include "dataplane/table_memory.hpp"

#include <rte_eal.h>
#include <rte_malloc.h>
#include <sys/mman.h>

#include <cstdint>

namespace meshgate::dataplane {
namespace {

constexpr std::size_t huge_page = std::size_t{2} << 20;

std::size_t round_up(std::size_t bytes) {
    return (bytes + huge_page - 1) / huge_page * huge_page;
}

// The same answer at allocation and release: whether EAL has hugepages does not change once
// it is initialised.
bool mapped_privately(std::size_t bytes) {
    return bytes >= huge_page && !rte_eal_has_hugepages();
}

// `length` bytes (a multiple of 2 MiB) starting on a 2 MiB boundary: a larger mapping with its
// unaligned head and tail unmapped again, so that every 2 MiB of it can be one huge page.
void* map_aligned(std::size_t length) {
    void* mapped = mmap(nullptr, length + huge_page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) {
        return nullptr;
    }
    const auto start = reinterpret_cast<std::uintptr_t>(mapped);
    const std::uintptr_t aligned = (start + huge_page - 1) & ~(huge_page - 1);
    if (aligned > start) {
        munmap(mapped, aligned - start);
    }
    const std::uintptr_t end = start + length + huge_page;
    if (end > aligned + length) {
        munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
    }
    void* table = reinterpret_cast<void*>(aligned);
    // Advice only: without transparent huge pages (or without free ones) the table still
    // works, in 4 KiB pages.
    madvise(table, length, MADV_HUGEPAGE);
    return table;
}

}  // namespace

void* allocate_table_memory(const char* name, std::size_t bytes, int socket) {
    if (mapped_privately(bytes)) {
        return map_aligned(round_up(bytes));  // anonymous memory is zeroed
    }
    return rte_zmalloc_socket(name, bytes, RTE_CACHE_LINE_SIZE, socket);
}

void free_table_memory(void* memory, std::size_t bytes) {
    if (memory == nullptr) {
        return;
    }
    if (mapped_privately(bytes)) {
        munmap(memory, round_up(bytes));
        return;
    }
    rte_free(memory);
}

}  // namespace meshgate::dataplane
