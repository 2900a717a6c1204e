#include "dataplane/fragmentation.hpp"

#include <rte_byteorder.h>
#include <rte_ip.h>

#include <cstring>

#include "dataplane/handoff.hpp"

namespace meshgate::dataplane {

FragmentResult fragment_ipv4(rte_mbuf* packet, std::uint16_t mtu,
                             rte_mbuf* fragments[max_fragments], unsigned& count) {
    count = 0;
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    if (length < sizeof(rte_ipv4_hdr)) {
        return FragmentResult::not_allowed;
    }
    const auto* ip = rte_pktmbuf_mtod(packet, const rte_ipv4_hdr*);
    const std::uint16_t flags_offset = rte_be_to_cpu_16(ip->fragment_offset);
    // Options would have to be sorted into those copied to every fragment and those not
    // (RFC 791 "copied flag"); packets with options are too rare on the internet to bother.
    if ((ip->version_ihl >> 4) != 4 || rte_ipv4_hdr_len(ip) != sizeof(rte_ipv4_hdr) ||
        (flags_offset & RTE_IPV4_HDR_DF_FLAG) != 0) {
        return FragmentResult::not_allowed;
    }
    const std::uint32_t total = std::min<std::uint32_t>(rte_be_to_cpu_16(ip->total_length), length);
    if (total < sizeof(rte_ipv4_hdr)) {
        return FragmentResult::not_allowed;  // a broken header: nothing sane to split
    }
    const std::uint32_t data = total - sizeof(rte_ipv4_hdr);
    // Every fragment but the last carries a multiple of 8 data bytes (offsets count 8-byte units).
    const std::uint32_t chunk = (mtu - sizeof(rte_ipv4_hdr)) & ~7u;
    if (mtu <= sizeof(rte_ipv4_hdr) + 8 || (data + chunk - 1) / chunk > max_fragments) {
        return FragmentResult::too_many;
    }
    const std::uint16_t first_unit = flags_offset & RTE_IPV4_HDR_OFFSET_MASK;
    const bool more_after = (flags_offset & RTE_IPV4_HDR_MF_FLAG) != 0;
    const auto* source = rte_pktmbuf_mtod(packet, const std::uint8_t*) + sizeof(rte_ipv4_hdr);
    for (std::uint32_t done = 0; done < data; done += chunk) {
        const std::uint32_t size = std::min(chunk, data - done);
        rte_mbuf* piece = rte_pktmbuf_alloc(packet->pool);
        auto* bytes = piece == nullptr
                          ? nullptr
                          : reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(
                                piece, static_cast<std::uint16_t>(sizeof(rte_ipv4_hdr) + size)));
        if (bytes == nullptr) {
            rte_pktmbuf_free(piece);  // null-safe
            rte_pktmbuf_free_bulk(fragments, count);
            count = 0;
            return FragmentResult::too_many;
        }
        std::memcpy(bytes, ip, sizeof(rte_ipv4_hdr));
        std::memcpy(bytes + sizeof(rte_ipv4_hdr), source + done, size);
        auto* header = reinterpret_cast<rte_ipv4_hdr*>(bytes);
        const bool last = done + size == data;
        header->total_length =
            rte_cpu_to_be_16(static_cast<std::uint16_t>(sizeof(rte_ipv4_hdr) + size));
        header->fragment_offset = rte_cpu_to_be_16(static_cast<std::uint16_t>(
            (first_unit + done / 8) | (!last || more_after ? RTE_IPV4_HDR_MF_FLAG : 0)));
        header->hdr_checksum = 0;
        header->hdr_checksum = rte_ipv4_cksum(header);
        packet_meta(piece) = packet_meta(packet);
        fragments[count++] = piece;
    }
    rte_pktmbuf_free(packet);
    return FragmentResult::fragmented;
}

}  // namespace meshgate::dataplane
