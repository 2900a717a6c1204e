// Memory for a worker's large lookup tables: the NAT's flow entries and flow indexes, read at
// random, one or two lines per packet, over up to hundreds of megabytes.
//
// With EAL hugepages the tables come from DPDK's heap on the requested socket, as everything
// else does. Without them (--no-huge: containers, CI, machines without reserved pages) DPDK's
// memory is a memfd in 4 KiB pages that transparent huge pages do not back, and a table of a
// million flows then misses the TLB on nearly every lookup (exit_in/1420/1000000's NAT stage
// took 370-450 cycles a packet so, 290-370 in huge pages: bench/RESULTS.md, session 17). So a
// table of 2 MiB or more is mapped privately instead, aligned to 2 MiB and advised
// MADV_HUGEPAGE, so that the kernel backs it with huge pages where it has them. Smaller tables
// stay in DPDK's heap: a huge page for a few kilobytes would waste the rest of it.
//
// Cold path only (construction and destruction of the tables).
#pragma once

#include <cstddef>

namespace meshgate::dataplane {

// Zeroed memory for `bytes`, aligned to a cache line; nullptr when there is none. `name`
// labels a DPDK allocation.
void* allocate_table_memory(const char* name, std::size_t bytes, int socket);
// Gives back what allocate_table_memory(·, bytes, ·) returned (nullptr: nothing).
void free_table_memory(void* memory, std::size_t bytes);

}  // namespace meshgate::dataplane
