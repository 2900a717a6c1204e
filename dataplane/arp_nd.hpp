// Neighbour resolution on the control lcore: ARP (RFC 826) for IPv4 and Neighbor Discovery
// (RFC 4861, solicitation and advertisement only) for IPv6.
//
// It answers requests for the gateway's own addresses, learns the senders of requests and
// replies, and builds requests for next hops and on-link peer endpoints. Workers never consult
// it: each peer's endpoint carries the MAC it was last seen from (or that this table resolved),
// so the hot path needs no neighbour lookup.
//
// Works on frame bytes, not mbufs, so it is testable without EAL. Control thread only.
#pragma once

#include <rte_ether.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "dataplane/headers.hpp"

namespace meshgate::dataplane {

using Frame = std::vector<std::uint8_t>;

class ArpNd {
  public:
    struct Own {
        rte_ether_addr mac{};
        std::optional<IpAddress> ipv4;
        std::optional<IpAddress> ipv6;
    };
    // How long a learned mapping is trusted, and how often an unanswered one is asked again.
    static constexpr std::uint64_t reachable_ns = 60'000'000'000ULL;
    static constexpr std::uint64_t retry_ns = 1'000'000'000ULL;

    explicit ArpNd(Own own) : own_(own) {}

    // An ARP or ICMPv6 frame arrived. Learns from it; returns a reply to transmit, if any.
    std::optional<Frame> on_frame(const std::uint8_t* frame, std::size_t length,
                                  std::uint64_t now_ns);

    // The MAC for `address` if known and fresh.
    std::optional<rte_ether_addr> lookup(const IpAddress& address, std::uint64_t now_ns) const;

    // A request for `address` (ARP who-has, or a neighbour solicitation to its
    // solicited-node multicast group), or nothing when one was sent less than retry_ns ago.
    std::optional<Frame> request(const IpAddress& address, std::uint64_t now_ns);

    // Forgets mappings not confirmed for 4 x reachable_ns (bounded memory).
    void age(std::uint64_t now_ns);

    std::size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        std::optional<rte_ether_addr> mac;
        std::uint64_t confirmed_ns = 0;
        std::optional<std::uint64_t> requested_ns;  // when we last asked, if ever
    };
    static constexpr std::size_t max_entries = 4096;

    std::optional<Frame> on_arp(const std::uint8_t* frame, std::size_t length,
                                std::uint64_t now_ns);
    std::optional<Frame> on_icmpv6(const std::uint8_t* frame, std::size_t length,
                                   std::uint64_t now_ns);
    void learn(const IpAddress& address, const rte_ether_addr& mac, std::uint64_t now_ns);
    Frame arp_frame(std::uint16_t operation, const rte_ether_addr& target_mac,
                    const IpAddress& target_ip, const rte_ether_addr& destination) const;
    Frame nd_frame(std::uint8_t type, const IpAddress& source, const IpAddress& destination,
                   const rte_ether_addr& destination_mac, const IpAddress& target,
                   std::uint32_t flags) const;

    Own own_;
    std::map<std::array<std::uint8_t, 17>, Entry> entries_;
};

}  // namespace meshgate::dataplane
