#include "dataplane/arp_nd.hpp"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ip.h>

#include <cstring>

#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

constexpr std::uint8_t option_source_link_address = 1;
constexpr std::uint8_t option_target_link_address = 2;
constexpr std::uint8_t nd_hop_limit = 255;  // RFC 4861 §7.1.1: anything else was forwarded
constexpr std::uint32_t flag_solicited = 0x40000000;
constexpr std::uint32_t flag_override = 0x20000000;
constexpr std::size_t nd_body = 4 + 16;  // flags/reserved + target address
constexpr std::size_t nd_option = 8;     // one link-layer address option

// Packed: it sits at offset 54 of a frame, so nothing in it may assume alignment.
struct __attribute__((packed)) Icmpv6Nd {
    std::uint8_t type;
    std::uint8_t code;
    std::uint16_t checksum;
    std::uint32_t flags;  // network order
    std::uint8_t target[16];
};
static_assert(sizeof(Icmpv6Nd) == 4 + nd_body);

std::array<std::uint8_t, 17> key_of(const IpAddress& address) {
    std::array<std::uint8_t, 17> key{};
    std::memcpy(key.data(), address.bytes.data(), 16);
    key[16] = address.is_v6 ? 6 : 4;
    return key;
}

bool is_unspecified(const std::uint8_t* v6) {
    static const std::uint8_t zero[16] = {};
    return std::memcmp(v6, zero, 16) == 0;
}

// Finds a link-layer address option of `type` among the options after an ND body.
const std::uint8_t* find_link_option(const std::uint8_t* options, std::size_t length,
                                     std::uint8_t type) {
    while (length >= 8) {
        std::size_t option_length = std::size_t{options[1]} * 8;
        if (option_length == 0 || option_length > length) {
            return nullptr;  // RFC 4861 §4.6: a zero-length option invalidates the packet
        }
        if (options[0] == type && option_length == 8) {
            return options + 2;
        }
        options += option_length;
        length -= option_length;
    }
    return nullptr;
}

}  // namespace

void ArpNd::learn(const IpAddress& address, const rte_ether_addr& mac, std::uint64_t now_ns) {
    auto key = key_of(address);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        if (entries_.size() >= max_entries) {
            return;  // bounded: a flood of ARP from random senders cannot grow the table
        }
        it = entries_.emplace(key, Entry{}).first;
    }
    it->second.mac = mac;
    it->second.confirmed_ns = now_ns;
}

std::optional<rte_ether_addr> ArpNd::lookup(const IpAddress& address, std::uint64_t now_ns) const {
    auto it = entries_.find(key_of(address));
    if (it == entries_.end() || !it->second.mac ||
        now_ns - it->second.confirmed_ns > reachable_ns) {
        return std::nullopt;
    }
    return it->second.mac;
}

void ArpNd::age(std::uint64_t now_ns) {
    std::erase_if(entries_, [now_ns](const auto& item) {
        const Entry& entry = item.second;
        std::uint64_t last = std::max(entry.confirmed_ns, entry.requested_ns.value_or(0));
        return now_ns - last > 4 * reachable_ns;
    });
}

std::optional<Frame> ArpNd::on_frame(const std::uint8_t* frame, std::size_t length,
                                     std::uint64_t now_ns) {
    if (length < sizeof(rte_ether_hdr)) {
        return std::nullopt;
    }
    auto* ethernet = reinterpret_cast<const rte_ether_hdr*>(frame);
    switch (rte_be_to_cpu_16(ethernet->ether_type)) {
        case RTE_ETHER_TYPE_ARP:
            return on_arp(frame, length, now_ns);
        case RTE_ETHER_TYPE_IPV6:
            return on_icmpv6(frame, length, now_ns);
        default:
            return std::nullopt;
    }
}

std::optional<Frame> ArpNd::on_arp(const std::uint8_t* frame, std::size_t length,
                                   std::uint64_t now_ns) {
    if (length < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
        return std::nullopt;
    }
    auto* arp = reinterpret_cast<const rte_arp_hdr*>(frame + sizeof(rte_ether_hdr));
    if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
        arp->arp_plen != 4) {
        return std::nullopt;
    }
    const IpAddress sender = IpAddress::v4(arp->arp_data.arp_sip);
    const bool for_us = own_.ipv4 && arp->arp_data.arp_tip == own_.ipv4->v4_network_order();
    // RFC 826: update a mapping we hold; add one only when the packet is addressed to us.
    if (arp->arp_data.arp_sip != 0 && (for_us || entries_.contains(key_of(sender)))) {
        learn(sender, arp->arp_data.arp_sha, now_ns);
    }
    if (for_us && arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) {
        return arp_frame(RTE_ARP_OP_REPLY, arp->arp_data.arp_sha, sender, arp->arp_data.arp_sha);
    }
    return std::nullopt;
}

std::optional<Frame> ArpNd::on_icmpv6(const std::uint8_t* frame, std::size_t length,
                                      std::uint64_t now_ns) {
    constexpr std::size_t headers = sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr);
    if (length < headers + sizeof(Icmpv6Nd)) {
        return std::nullopt;
    }
    auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(frame + sizeof(rte_ether_hdr));
    std::size_t payload = rte_be_to_cpu_16(ip->payload_len);
    if (ip->proto != protocol_icmpv6 || ip->hop_limits != nd_hop_limit ||
        payload < sizeof(Icmpv6Nd) || headers + payload > length ||
        rte_ipv6_udptcp_cksum_verify(ip, ip + 1) != 0) {
        return std::nullopt;
    }
    auto* nd = reinterpret_cast<const Icmpv6Nd*>(ip + 1);
    const std::uint8_t* options = reinterpret_cast<const std::uint8_t*>(nd + 1);
    const std::size_t options_length = payload - sizeof(Icmpv6Nd);
    const IpAddress target = IpAddress::v6(nd->target);
    const bool target_is_us = own_.ipv6 && target == *own_.ipv6;

    if (nd->type == icmpv6_neighbour_solicitation && nd->code == 0 && target_is_us) {
        const std::uint8_t* link =
            find_link_option(options, options_length, option_source_link_address);
        rte_ether_addr reply_mac = reinterpret_cast<const rte_ether_hdr*>(frame)->src_addr;
        if (link != nullptr) {
            std::memcpy(reply_mac.addr_bytes, link, 6);
            if (!is_unspecified(ip->src_addr)) {
                learn(IpAddress::v6(ip->src_addr), reply_mac, now_ns);
            }
        }
        // Duplicate address detection probes come from :: and are answered to all nodes.
        static const std::uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0,
                                                   0,    0,    0, 0, 0, 0, 0, 1};
        bool from_unspecified = is_unspecified(ip->src_addr);
        IpAddress destination = IpAddress::v6(from_unspecified ? all_nodes : ip->src_addr);
        std::uint32_t flags = flag_override | (from_unspecified ? 0 : flag_solicited);
        return nd_frame(icmpv6_neighbour_advertisement, *own_.ipv6, destination, reply_mac,
                        *own_.ipv6, flags);
    }
    if (nd->type == icmpv6_neighbour_advertisement && nd->code == 0 &&
        entries_.contains(key_of(target))) {
        if (const std::uint8_t* link =
                find_link_option(options, options_length, option_target_link_address)) {
            rte_ether_addr mac;
            std::memcpy(mac.addr_bytes, link, 6);
            learn(target, mac, now_ns);
        }
    }
    return std::nullopt;
}

std::optional<Frame> ArpNd::request(const IpAddress& address, std::uint64_t now_ns) {
    auto key = key_of(address);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        if (entries_.size() >= max_entries) {
            return std::nullopt;
        }
        it = entries_.emplace(key, Entry{}).first;
    } else if (it->second.requested_ns && now_ns - *it->second.requested_ns < retry_ns) {
        return std::nullopt;
    }
    it->second.requested_ns = now_ns;
    if (!address.is_v6) {
        if (!own_.ipv4) {
            return std::nullopt;
        }
        rte_ether_addr broadcast;
        std::memset(broadcast.addr_bytes, 0xff, 6);
        return arp_frame(RTE_ARP_OP_REQUEST, rte_ether_addr{}, address, broadcast);
    }
    if (!own_.ipv6) {
        return std::nullopt;
    }
    // Solicited-node multicast group ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
    std::uint8_t group[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
    std::memcpy(group + 13, address.bytes.data() + 13, 3);
    rte_ether_addr group_mac = {
        {0x33, 0x33, 0xff, address.bytes[13], address.bytes[14], address.bytes[15]}};
    return nd_frame(icmpv6_neighbour_solicitation, *own_.ipv6, IpAddress::v6(group), group_mac,
                    address, 0);
}

Frame ArpNd::arp_frame(std::uint16_t operation, const rte_ether_addr& target_mac,
                       const IpAddress& target_ip, const rte_ether_addr& destination) const {
    Frame frame(sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr));
    auto* ethernet = reinterpret_cast<rte_ether_hdr*>(frame.data());
    ethernet->dst_addr = destination;
    ethernet->src_addr = own_.mac;
    ethernet->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    auto* arp = reinterpret_cast<rte_arp_hdr*>(ethernet + 1);
    arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = 6;
    arp->arp_plen = 4;
    arp->arp_opcode = rte_cpu_to_be_16(operation);
    arp->arp_data.arp_sha = own_.mac;
    arp->arp_data.arp_sip = own_.ipv4->v4_network_order();
    arp->arp_data.arp_tha = target_mac;
    arp->arp_data.arp_tip = target_ip.v4_network_order();
    return frame;
}

Frame ArpNd::nd_frame(std::uint8_t type, const IpAddress& source, const IpAddress& destination,
                      const rte_ether_addr& destination_mac, const IpAddress& target,
                      std::uint32_t flags) const {
    Frame frame(sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + sizeof(Icmpv6Nd) + nd_option);
    auto* ethernet = reinterpret_cast<rte_ether_hdr*>(frame.data());
    ethernet->dst_addr = destination_mac;
    ethernet->src_addr = own_.mac;
    ethernet->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(ethernet + 1);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(sizeof(Icmpv6Nd) + nd_option);
    ip->proto = protocol_icmpv6;
    ip->hop_limits = nd_hop_limit;
    std::memcpy(ip->src_addr, source.bytes.data(), 16);
    std::memcpy(ip->dst_addr, destination.bytes.data(), 16);
    auto* nd = reinterpret_cast<Icmpv6Nd*>(ip + 1);
    nd->type = type;
    nd->flags = rte_cpu_to_be_32(flags);
    std::memcpy(nd->target, target.bytes.data(), 16);
    auto* option = reinterpret_cast<std::uint8_t*>(nd + 1);
    option[0] = type == icmpv6_neighbour_solicitation ? option_source_link_address
                                                      : option_target_link_address;
    option[1] = 1;  // length in units of 8 bytes
    std::memcpy(option + 2, own_.mac.addr_bytes, 6);
    nd->checksum = 0;
    nd->checksum = rte_ipv6_udptcp_cksum(ip, nd);
    return frame;
}

}  // namespace meshgate::dataplane
