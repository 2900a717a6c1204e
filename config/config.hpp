// The gateway's configuration as plain structs (no yaml-cpp types): what config/load.cpp
// produces from a YAML file and every other module consumes. Each value that can be wrong
// keeps the file position it came from, so later checks can point at it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/ip.hpp"
#include "control/endpoint.hpp"
#include "crypto/keys.hpp"

namespace meshgate::config {

// 1-based line and column in the configuration file; 0 when unknown.
struct SourceMark {
    int line = 0;
    int column = 0;
};

struct Interface {
    crypto::PrivateKey private_key;  // inline, or read from private_key_file
    std::string private_key_file;
    std::uint16_t listen_port = 51820;
    std::vector<Prefix> addresses;  // the gateway's own tunnel addresses, e.g. 10.100.0.1/24
    SourceMark mark;
};

enum class PortRole : std::uint8_t { wan, uplink };

struct Port {
    std::string name;
    std::string device;  // PCI address or vdev string ("net_af_packet0,iface=veth0")
    PortRole role = PortRole::wan;
    std::optional<Prefix> address;   // IPv4, with the port's own host address
    std::optional<Prefix> address6;  // IPv6
    std::optional<IpAddress> next_hop;
    std::optional<IpAddress> next_hop6;
    std::uint16_t mtu = 0;  // 0: the device's default
    SourceMark mark;
};

struct Workers {
    std::vector<unsigned> lcores{1};  // one worker per lcore
    unsigned control_lcore = 0;       // the main lcore runs the control thread
    // 0: workers poll without pause (production). Tests and the demo, where workers share
    // cores, let an idle worker sleep this long.
    unsigned idle_sleep_us = 0;
};

struct Eal {
    bool hugepages = false;
    unsigned memory_mb = 1024;
    std::vector<std::string> args;  // passed to rte_eal_init after ours
};

// Per-direction rate limit (bytes per second and burst), enforced with rte_meter.
struct RateLimit {
    std::uint64_t bytes_per_second = 0;
    std::uint64_t burst_bytes = 0;
};

enum Permission : std::uint8_t {
    permission_exit = 1 << 0,   // may leave through the uplink
    permission_lan = 1 << 1,    // may reach private and local destinations
    permission_peers = 1 << 2,  // may reach other peers through the hub
};

struct Peer {
    std::string name;  // for logs and `meshgate show`; defaults to the key's first characters
    crypto::PublicKey public_key{};
    crypto::PresharedKey preshared_key;  // zero when none
    bool has_preshared_key = false;
    std::vector<Prefix> allowed_ips;  // networks (host bits cleared)
    std::vector<SourceMark> allowed_ip_marks;
    std::optional<control::Endpoint> endpoint;
    std::uint16_t persistent_keepalive = 0;  // seconds; 0 = off
    std::uint8_t permissions = 0;            // none by default ("guest wifi")
    std::optional<RateLimit> ingress;        // from the peer
    std::optional<RateLimit> egress;         // to the peer
    SourceMark mark;
    SourceMark public_key_mark;
    SourceMark permissions_mark;
};

// Masquerading exit traffic to the uplink's address. Timeouts in seconds; a flow idle longer
// than its protocol's timeout is forgotten and its port reused.
struct Nat {
    std::uint32_t tcp_established_timeout = 7440;  // RFC 5382: at least 2 h 4 min
    std::uint32_t tcp_transitory_timeout = 240;    // opening or closing (RFC 5382: 4 min)
    std::uint32_t udp_timeout = 300;               // RFC 4787 recommends 5 min
    std::uint32_t icmp_timeout = 60;               // RFC 5508: 60 s
    std::uint32_t table_size = 65536;              // flows per worker
    std::uint16_t port_first = 1024;               // uplink ports, shared out among workers
    std::uint16_t port_last = 65535;
    SourceMark port_range_mark;
};

// The exit node (issue 5): how peers with the `exit` permission leave through the uplink.
struct Exit {
    std::string flow_log;  // JSON lines of every translated flow; empty: off
    Nat nat;
    bool mss_clamp = true;  // clamp TCP MSS to fit the tunnel MTU
    SourceMark mark;
};

struct Config {
    std::string file;  // for error messages
    Interface interface;
    std::vector<Port> ports;
    Workers workers;
    Eal eal;
    Exit exit;
    std::vector<Peer> peers;
};

// "file:line:column: " for a value's position.
std::string where(const Config& config, const SourceMark& mark);

// The frame size DPDK's af_packet driver runs `port` with: the device string's `framesz=`, or
// `af_packet_uplink_frame_size` on an uplink, or the driver's 2048. 0: not an af_packet device.
//
// An uplink's frames are larger because the driver has the kernel reassemble IPv4 fragments
// before they reach it (PACKET_FANOUT_FLAG_DEFRAG), and a frame cuts a longer datagram short:
// fragmented answers from the internet (large DNS answers, big pings) would all be lost.
inline constexpr std::uint32_t af_packet_default_frame_size = 2048;
inline constexpr std::uint32_t af_packet_uplink_frame_size = 8192;
std::uint32_t af_packet_frame_size(const Port& port);

// The rte_eal_init arguments for this configuration, then `overrides` (from the command line
// after `--`), which win because EAL keeps the last value of a repeated option. af_packet and
// af_xdp vdevs get one queue pair per worker plus one for the control thread unless the
// device string already says how many; an af_packet uplink gets its frame size (above).
std::vector<std::string> eal_arguments(const Config& config,
                                       const std::vector<std::string>& overrides = {});

}  // namespace meshgate::config
