#include "dataplane/exit_policy.hpp"

#include <rte_byteorder.h>

#include <cstring>
#include <stdexcept>

namespace meshgate::dataplane {
namespace {

struct Builtin {
    std::uint8_t bytes[16];
    std::uint8_t length;
};

// Never reachable without `lan`: RFC 1918 private, RFC 6598 shared (carrier-grade NAT),
// RFC 3927 link-local (and cloud metadata), loopback, "this network", multicast, and the
// limited broadcast address.
constexpr Builtin builtin_v4_ranges[] = {
    {{10, 0, 0, 0}, 8},    {{172, 16, 0, 0}, 12},  {{192, 168, 0, 0}, 16},
    {{100, 64, 0, 0}, 10}, {{169, 254, 0, 0}, 16}, {{127, 0, 0, 0}, 8},
    {{0, 0, 0, 0}, 8},     {{224, 0, 0, 0}, 4},    {{255, 255, 255, 255}, 32},
};

// Loopback, the unspecified address, unique local (RFC 4193), link-local, multicast.
// IPv4-mapped addresses (::ffff:0:0/96) are judged by the IPv4 address they carry.
constexpr Builtin builtin_v6_ranges[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
    {{}, 128},
    {{0xfc}, 7},
    {{0xfe, 0x80}, 10},
    {{0xff}, 8},
};

std::uint32_t mask_v4(unsigned length) {
    return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
}

// The mask of a 64-bit half that holds `length` of the prefix's bits (0..64).
std::uint64_t mask_half(unsigned length) {
    return length == 0 ? 0 : ~std::uint64_t{0} << (64 - length);
}

std::uint64_t load_half(const std::uint8_t* eight) {
    std::uint64_t value;
    std::memcpy(&value, eight, 8);
    return rte_be_to_cpu_64(value);
}

bool is_v4_mapped(const IpAddress& address) {
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(address.bytes.data(), mapped, sizeof mapped) == 0;
}

}  // namespace

LocalDestinations::LocalDestinations(std::span<const Prefix> attached, bool builtin) {
    static_assert(std::size(builtin_v4_ranges) == builtin_v4);
    static_assert(std::size(builtin_v6_ranges) == builtin_v6);
    if (builtin) {
        for (const Builtin& range : builtin_v4_ranges) {
            Prefix prefix;
            std::memcpy(prefix.address.bytes.data(), range.bytes, 4);
            prefix.length = range.length;
            add(prefix);
        }
        for (const Builtin& range : builtin_v6_ranges) {
            Prefix prefix;
            std::memcpy(prefix.address.bytes.data(), range.bytes, 16);
            prefix.address.is_v6 = true;
            prefix.length = range.length;
            add(prefix);
        }
    }
    for (const Prefix& prefix : attached) {
        add(prefix);
    }
}

void LocalDestinations::FirstBytes::mark(std::uint8_t first, unsigned length) {
    // A prefix shorter than 8 bits spans every first byte that agrees on its leading bits.
    const unsigned span = length >= 8 ? 1 : 1u << (8 - length);
    const unsigned start = first & ~(span - 1);
    for (unsigned byte = start; byte < start + span; ++byte) {
        bits_[byte >> 6] |= std::uint64_t{1} << (byte & 63);
    }
}

void LocalDestinations::add(const Prefix& prefix) {
    if (prefix.address.is_v6) {
        if (v6_count_ == v6_.size()) {
            throw std::length_error("more than 16 attached IPv6 subnets");
        }
        const unsigned length = prefix.length > 128 ? 128 : prefix.length;
        RangeV6& range = v6_[v6_count_++];
        range.mask_high = mask_half(length > 64 ? 64 : length);
        range.mask_low = mask_half(length > 64 ? length - 64 : 0);
        range.network_high = load_half(prefix.address.bytes.data()) & range.mask_high;
        range.network_low = load_half(prefix.address.bytes.data() + 8) & range.mask_low;
        v6_first_.mark(static_cast<std::uint8_t>(range.network_high >> 56), length);
        return;
    }
    if (v4_count_ == v4_.size()) {
        throw std::length_error("more than 16 attached IPv4 subnets");
    }
    RangeV4& range = v4_[v4_count_++];
    range.mask = mask_v4(prefix.length > 32 ? 32 : prefix.length);
    range.network = prefix.address.v4_host_order() & range.mask;
    v4_first_.mark(static_cast<std::uint8_t>(range.network >> 24), prefix.length);
    v6_first_.mark(0x00, 8);  // ::ffff:a.b.c.d is judged as a.b.c.d
}

bool LocalDestinations::in_v4_ranges(std::uint32_t address) const {
    for (std::size_t i = 0; i < v4_count_; ++i) {
        if ((address & v4_[i].mask) == v4_[i].network) {
            return true;
        }
    }
    return false;
}

bool LocalDestinations::in_v6_ranges(const IpAddress& address) const {
    if (is_v4_mapped(address)) {
        std::uint32_t embedded;
        std::memcpy(&embedded, address.bytes.data() + 12, 4);
        return is_local_v4(rte_be_to_cpu_32(embedded));
    }
    const std::uint64_t high = load_half(address.bytes.data());
    const std::uint64_t low = load_half(address.bytes.data() + 8);
    for (std::size_t i = 0; i < v6_count_; ++i) {
        const RangeV6& range = v6_[i];
        if ((high & range.mask_high) == range.network_high &&
            (low & range.mask_low) == range.network_low) {
            return true;
        }
    }
    return false;
}

std::vector<Prefix> attached_subnets(const config::Config& config) {
    std::vector<Prefix> subnets;
    auto add = [&subnets](const config::Prefix& prefix) {
        Prefix converted;
        converted.address.is_v6 = prefix.address.is_v6;
        converted.address.bytes = prefix.address.bytes;
        converted.length = prefix.length;
        subnets.push_back(canonical(converted));
    };
    for (const config::Port& port : config.ports) {
        if (port.address) {
            add(*port.address);
        }
        if (port.address6) {
            add(*port.address6);
        }
    }
    for (const config::Prefix& own : config.interface.addresses) {
        add(own);
    }
    return subnets;
}

}  // namespace meshgate::dataplane
