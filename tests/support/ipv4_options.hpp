// An IPv4 packet with options, for tests: `ip` (a 20-byte header and its data) with `options`
// (a whole number of 32-bit words) inserted after the header, its header length, total
// length and checksum made right again.
#pragma once

#include <rte_ip.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace meshgate::test {

inline std::vector<std::uint8_t> with_ipv4_options(const std::vector<std::uint8_t>& ip,
                                                   const std::vector<std::uint8_t>& options) {
    std::vector<std::uint8_t> out(ip.size() + options.size());
    std::copy(ip.begin(), ip.begin() + 20, out.begin());
    std::copy(options.begin(), options.end(), out.begin() + 20);
    std::copy(ip.begin() + 20, ip.end(), out.begin() + 20 + static_cast<long>(options.size()));
    auto* header = reinterpret_cast<rte_ipv4_hdr*>(out.data());
    header->version_ihl = static_cast<std::uint8_t>(0x40 | (20 + options.size()) / 4);
    header->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(out.size()));
    header->hdr_checksum = 0;
    header->hdr_checksum = rte_ipv4_cksum(header);
    return out;
}

}  // namespace meshgate::test
