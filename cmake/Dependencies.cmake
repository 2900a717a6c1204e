# Every dependency is found here, once. A missing one stops configuration with the Debian
# package that provides it, so `tools/bootstrap` (or apt-get) is one step away.
find_package(PkgConfig)
if(NOT PkgConfig_FOUND)
    message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config (or run tools/bootstrap)")
endif()

function(meshgate_require_pkg target module debian_package)
    pkg_check_modules(${target} IMPORTED_TARGET GLOBAL ${module})
    if(NOT ${target}_FOUND)
        message(FATAL_ERROR
            "${module} not found by pkg-config: apt-get install ${debian_package} (or run tools/bootstrap)")
    endif()
endfunction()

meshgate_require_pkg(SODIUM libsodium libsodium-dev)
meshgate_require_pkg(LIBCRYPTO libcrypto libssl-dev)
meshgate_require_pkg(YAMLCPP yaml-cpp libyaml-cpp-dev)
meshgate_require_pkg(DPDK libdpdk libdpdk-dev)

# The ring PMD's API (rte_eth_from_rings) is not in libdpdk.pc's shared libraries; the
# pipeline tests and benchmarks use it to feed workers from memory.
find_library(DPDK_NET_RING_LIBRARY rte_net_ring)
if(NOT DPDK_NET_RING_LIBRARY)
    message(FATAL_ERROR "librte_net_ring not found: apt-get install libdpdk-dev (or run tools/bootstrap)")
endif()

# Intel ipsec-mb ships neither a pkg-config file nor a CMake package: header + library.
find_path(IPSECMB_INCLUDE_DIR intel-ipsec-mb.h)
find_library(IPSECMB_LIBRARY IPSec_MB)
if(NOT IPSECMB_INCLUDE_DIR OR NOT IPSECMB_LIBRARY)
    message(FATAL_ERROR "intel-ipsec-mb.h / libIPSec_MB not found: apt-get install libipsec-mb-dev (or run tools/bootstrap)")
endif()
add_library(meshgate::ipsecmb UNKNOWN IMPORTED GLOBAL)
set_target_properties(meshgate::ipsecmb PROPERTIES
    IMPORTED_LOCATION "${IPSECMB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${IPSECMB_INCLUDE_DIR}")

find_package(GTest QUIET)
if(NOT GTest_FOUND)
    message(FATAL_ERROR "GoogleTest not found: apt-get install libgtest-dev libgmock-dev (or run tools/bootstrap)")
endif()
if(MESHGATE_BUILD_BENCHMARKS)
    find_package(benchmark QUIET)
    if(NOT benchmark_FOUND)
        message(FATAL_ERROR "Google Benchmark not found: apt-get install libbenchmark-dev (or run tools/bootstrap)")
    endif()
endif()
find_package(Threads REQUIRED)
