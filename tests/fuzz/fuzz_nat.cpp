// libFuzzer target: any bytes as IP packets through the exit's per-packet code. The input is
// a flags byte, a length byte, then a packet for the uplink (that many bytes, from a peer) and
// a packet from the uplink (the rest). Both go through NAT on buffers exactly as long as they
// are, so ASan sees any read past the end; the inbound one also through the steering parse, the
// MSS clamp, and IPv4 fragmentation.
//
// Properties checked, beyond not crashing:
// - NAT leaves a packet it does not translate exactly as it was;
// - fragments fit their MTU and carry the packet's data in order.
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/fragmentation.hpp"
#include "dataplane/handoff.hpp"
#include "dataplane/nat.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using meshgate::dataplane::NatTable;

using meshgate::fuzz::check;

struct World {
    meshgate::fuzz::FuzzEal eal{"fuzz-nat", 256};
    rte_mempool* pool = nullptr;
    std::unique_ptr<NatTable> nat;

    World() {
        if (!meshgate::dataplane::register_packet_meta()) {
            std::abort();
        }
        pool = rte_pktmbuf_pool_create("fuzz_nat_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        if (pool == nullptr) {
            std::abort();
        }
        meshgate::dataplane::NatOptions options;
        options.capacity = 64;
        options.ports = {20000, 20063};
        options.uplink_v4 = meshgate::dataplane::IpAddress::v4(rte_cpu_to_be_32(0xCB007101));
        options.uplink_v6.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        options.ticks_per_second = 1;
        nat = std::make_unique<NatTable>("fuzz_nat", options);
    }
    ~World() {
        nat.reset();
        rte_mempool_free(pool);
    }
};

// NAT on a heap buffer exactly as long as the packet; untranslated means untouched.
template <typename Translate>
void through_nat(const std::uint8_t* data, std::size_t size, Translate translate) {
    // Compared with std::equal, not memcmp: an empty vector's data() may be null, which memcmp
    // must not get even for zero bytes (UBSan).
    const std::vector<std::uint8_t> before(data, data + size);
    auto exact = std::make_unique<std::uint8_t[]>(size);  // exactly: ASan sees any overread
    std::copy(data, data + size, exact.get());
    const meshgate::dataplane::NatOutcome outcome =
        translate(exact.get(), static_cast<std::uint32_t>(size));
    if (outcome.result != meshgate::dataplane::NatResult::translated) {
        check(std::equal(exact.get(), exact.get() + size, before.begin()));
    }
}

void fragment(const std::uint8_t* data, std::size_t size, rte_mempool* pool, std::uint16_t mtu) {
    rte_mbuf* packet = rte_pktmbuf_alloc(pool);
    if (packet == nullptr || size > rte_pktmbuf_tailroom(packet)) {
        rte_pktmbuf_free(packet);
        return;
    }
    std::memcpy(rte_pktmbuf_append(packet, static_cast<std::uint16_t>(size)), data, size);
    rte_mbuf* pieces[meshgate::dataplane::max_fragments];
    unsigned count = 0;
    if (meshgate::dataplane::fragment_ipv4(packet, mtu, pieces, count) !=
        meshgate::dataplane::FragmentResult::fragmented) {
        check(count == 0);
        rte_pktmbuf_free(packet);
        return;
    }
    // What fragment_ipv4 split: the packet's data, past its header and up to its total length
    // (or the buffer's end). Each piece's data starts after its own header: the first keeps
    // every option, the later ones only the copied ones.
    const std::size_t header_size = (data[0] & 0xF) * 4u;
    const std::size_t total = std::min<std::size_t>(
        rte_be_to_cpu_16(reinterpret_cast<const rte_ipv4_hdr*>(data)->total_length), size);
    check(count >= 1);
    std::vector<std::uint8_t> joined;
    for (unsigned i = 0; i < count; ++i) {
        check(rte_pktmbuf_data_len(pieces[i]) <= mtu);
        const auto* bytes = rte_pktmbuf_mtod(pieces[i], const std::uint8_t*);
        const std::size_t piece_header_size = (bytes[0] & 0xF) * 4u;
        check(piece_header_size <= rte_pktmbuf_data_len(pieces[i]));
        if (i == 0) {
            check(piece_header_size == header_size &&
                  std::equal(bytes + sizeof(rte_ipv4_hdr), bytes + header_size,
                             data + sizeof(rte_ipv4_hdr)));
        }
        joined.insert(joined.end(), bytes + piece_header_size,
                      bytes + rte_pktmbuf_data_len(pieces[i]));
        rte_pktmbuf_free(pieces[i]);
    }
    check(joined.size() == total - header_size);
    check(std::equal(joined.begin(), joined.end(), data + header_size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World world;
    static std::uint64_t now = 0;
    if (size < 2) {
        return 0;
    }
    const std::uint8_t flags = data[0];
    const std::size_t first = std::min<std::size_t>(data[1] * 8u, size - 2);
    const std::uint8_t* out = data + 2;
    const std::uint8_t* in = out + first;
    const std::size_t in_size = size - 2 - first;
    now += flags & 3;  // sometimes time stands still, sometimes flows expire (UDP: 300 ticks)
    const meshgate::dataplane::PeerId peer = (flags >> 2) & 3;

    through_nat(out, first, [&](std::uint8_t* ip, std::uint32_t length) {
        return world.nat->translate_outbound(ip, length, peer, now);
    });
    through_nat(in, in_size, [&](std::uint8_t* ip, std::uint32_t length) {
        return world.nat->translate_inbound(ip, length, now);
    });
    (void)meshgate::dataplane::nat_inbound_steering(in, static_cast<std::uint32_t>(in_size));
    std::vector<std::uint8_t> clamped(in, in + in_size);
    (void)meshgate::dataplane::clamp_tcp_mss(clamped.data(), static_cast<std::uint32_t>(in_size),
                                             static_cast<std::uint16_t>(536 + flags));
    fragment(in, in_size, world.pool, static_cast<std::uint16_t>(68 + (flags >> 4) * 96));
    return 0;
}
