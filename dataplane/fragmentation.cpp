#include "dataplane/fragmentation.hpp"

#include <rte_byteorder.h>
#include <rte_ip.h>

#include <cstring>

#include "dataplane/handoff.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint32_t base_header_size = sizeof(rte_ipv4_hdr);
constexpr std::uint32_t max_header_size = 60;  // IHL is 4 bits of 32-bit words

// RFC 791 option types: the two single-byte ones, and the "copied" flag (the type's top bit)
// that marks the options every fragment must carry.
constexpr std::uint8_t option_end = 0;
constexpr std::uint8_t option_no_operation = 1;
constexpr std::uint8_t option_copied = 0x80;

// The header of the fragments after the first (RFC 791 §3.2): the base header and only the
// options whose copied flag is set (security, source routes), padded with end-of-options to
// whole words. False when the options do not parse: a router cannot tell what to copy.
bool later_fragment_header(const std::uint8_t* header, std::uint32_t header_size,
                           std::uint8_t later[max_header_size], std::uint32_t& later_size) {
    std::memcpy(later, header, base_header_size);
    later_size = base_header_size;
    for (std::uint32_t at = base_header_size; at < header_size;) {
        const std::uint8_t type = header[at];
        if (type == option_end) {
            break;
        }
        if (type == option_no_operation) {
            ++at;
            continue;
        }
        if (at + 1 >= header_size || header[at + 1] < 2 || at + header[at + 1] > header_size) {
            return false;
        }
        const std::uint8_t length = header[at + 1];
        if ((type & option_copied) != 0) {
            std::memcpy(later + later_size, header + at, length);
            later_size += length;
        }
        at += length;
    }
    const std::uint32_t padded = (later_size + 3) & ~3u;
    std::memset(later + later_size, option_end, padded - later_size);
    later_size = padded;
    later[0] = static_cast<std::uint8_t>(0x40 | later_size / 4);
    return true;
}

// Data bytes a fragment with a header of `header_size` carries, when it is not the last: a
// multiple of 8 (offsets count 8-byte units). Zero when no more than 8 bytes fit.
std::uint32_t data_per_fragment(std::uint16_t mtu, std::uint32_t header_size) {
    return mtu <= header_size + 8 ? 0 : (mtu - header_size) & ~7u;
}

}  // namespace

FragmentResult fragment_ipv4(rte_mbuf* packet, std::uint16_t mtu,
                             rte_mbuf* fragments[max_fragments], unsigned& count) {
    count = 0;
    const std::uint32_t length = rte_pktmbuf_data_len(packet);
    if (length < base_header_size) {
        return FragmentResult::not_allowed;
    }
    const auto* bytes_in = rte_pktmbuf_mtod(packet, const std::uint8_t*);
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(bytes_in);
    const std::uint16_t flags_offset = rte_be_to_cpu_16(ip->fragment_offset);
    const std::uint32_t header_size = rte_ipv4_hdr_len(ip);
    if ((ip->version_ihl >> 4) != 4 || (flags_offset & RTE_IPV4_HDR_DF_FLAG) != 0 ||
        header_size < base_header_size) {
        return FragmentResult::not_allowed;
    }
    const std::uint32_t total = std::min<std::uint32_t>(rte_be_to_cpu_16(ip->total_length), length);
    if (total < header_size) {
        return FragmentResult::not_allowed;  // a broken header: nothing sane to split
    }
    std::uint8_t later_header[max_header_size];
    std::uint32_t later_size = 0;
    if (!later_fragment_header(bytes_in, header_size, later_header, later_size)) {
        return FragmentResult::not_allowed;
    }
    const std::uint32_t data = total - header_size;
    // A packet that fits by its own length (the buffer only runs on past it) goes out whole,
    // as one piece: split by the 8-byte rule, it could have become two, and one with no data
    // at all none, freed as "fragmented" without a piece to send.
    const bool fits = total <= mtu;
    const std::uint32_t first_chunk = fits ? data : data_per_fragment(mtu, header_size);
    const std::uint32_t later_chunk = data_per_fragment(mtu, later_size);
    if (!fits && (first_chunk == 0 || later_chunk == 0 ||
                  1 + (data - first_chunk + later_chunk - 1) / later_chunk > max_fragments)) {
        return FragmentResult::too_many;
    }
    const std::uint16_t first_unit = flags_offset & RTE_IPV4_HDR_OFFSET_MASK;
    const bool more_after = (flags_offset & RTE_IPV4_HDR_MF_FLAG) != 0;
    const std::uint8_t* source = bytes_in + header_size;
    std::uint32_t done = 0;
    do {
        // The first piece keeps every option; the others carry only the copied ones.
        const std::uint8_t* header = done == 0 ? bytes_in : later_header;
        const std::uint32_t piece_header_size = done == 0 ? header_size : later_size;
        const std::uint32_t size = std::min(done == 0 ? first_chunk : later_chunk, data - done);
        rte_mbuf* piece = rte_pktmbuf_alloc(packet->pool);
        auto* bytes = piece == nullptr
                          ? nullptr
                          : reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(
                                piece, static_cast<std::uint16_t>(piece_header_size + size)));
        if (bytes == nullptr) {
            rte_pktmbuf_free(piece);  // null-safe
            rte_pktmbuf_free_bulk(fragments, count);
            count = 0;
            return FragmentResult::too_many;
        }
        std::memcpy(bytes, header, piece_header_size);
        std::memcpy(bytes + piece_header_size, source + done, size);
        auto* piece_ip = reinterpret_cast<rte_ipv4_hdr*>(bytes);
        const bool last = done + size == data;
        piece_ip->total_length =
            rte_cpu_to_be_16(static_cast<std::uint16_t>(piece_header_size + size));
        piece_ip->fragment_offset = rte_cpu_to_be_16(static_cast<std::uint16_t>(
            (first_unit + done / 8) | (!last || more_after ? RTE_IPV4_HDR_MF_FLAG : 0)));
        piece_ip->hdr_checksum = 0;
        piece_ip->hdr_checksum = rte_ipv4_cksum(piece_ip);
        packet_meta(piece) = packet_meta(packet);
        fragments[count++] = piece;
        done += size;
    } while (done < data);
    rte_pktmbuf_free(packet);
    return FragmentResult::fragmented;
}

}  // namespace meshgate::dataplane
