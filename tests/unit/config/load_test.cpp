// Configuration loading: the examples load; every bad value gets file:line:column and what
// was expected (exact strings, table-driven); secrets never appear in messages; key files
// readable by others are refused; EAL arguments follow the configuration.
#include "config/load.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "crypto/keys.hpp"
#include "crypto/x25519.hpp"

namespace meshgate::config {
namespace {

const std::string gateway_key = crypto::to_base64(crypto::generate_private_key().span());
const std::string peer_a =
    crypto::to_base64(crypto::derive_public_key(crypto::generate_private_key()));
const std::string peer_b =
    crypto::to_base64(crypto::derive_public_key(crypto::generate_private_key()));

std::string minimal(const std::string& peers = "") {
    return "interface:\n"
           "  private_key: " +
           gateway_key +
           "\n"
           "  addresses: [10.100.0.1/24]\n"
           "ports:\n"
           "  - name: wan\n"
           "    device: net_null0\n"
           "    address: 198.51.100.1/24\n" +
           peers;
}

std::string peer(const std::string& key, const std::string& allowed,
                 const std::string& extra = "") {
    return "  - public_key: " + key + "\n    allowed_ips: [" + allowed + "]\n" + extra;
}

const std::string uplink_port =
    "  - name: up\n"
    "    device: net_null1\n"
    "    role: uplink\n"
    "    address: 203.0.113.1/24\n";

std::string error_of(const std::string& text) {
    LoadResult result = load_string(text, "gw.yaml");
    if (std::holds_alternative<Config>(result)) {
        return "(loaded)";
    }
    return std::get<LoadError>(result).message;
}

TEST(Load, ExamplesLoadAndValidate) {
    for (const char* name : {"default.yaml", "exit.yaml"}) {
        LoadResult result =
            load_file(std::string(MESHGATE_SOURCE_DIR) + "/config/examples/" + name);
        ASSERT_TRUE(std::holds_alternative<Config>(result))
            << name << ": " << std::get<LoadError>(result).message;
    }
    Config config = std::get<Config>(
        load_file(std::string(MESHGATE_SOURCE_DIR) + "/config/examples/default.yaml"));
    EXPECT_EQ(config.peers.size(), 2u);
    EXPECT_EQ(config.peers[0].permissions, permission_peers | permission_exit);
    EXPECT_EQ(config.peers[1].permissions, permission_peers);
    EXPECT_EQ(config.interface.listen_port, 51820);

    Config exit = std::get<Config>(
        load_file(std::string(MESHGATE_SOURCE_DIR) + "/config/examples/exit.yaml"));
    EXPECT_FALSE(exit.exit.flow_log.empty());
    EXPECT_EQ(exit.peers[0].permissions, permission_exit) << "the traveller: exit, no lan";
    ASSERT_TRUE(exit.peers[0].ingress && exit.peers[0].egress);
    EXPECT_EQ(exit.peers[0].ingress->bytes_per_second, 2500000u) << "20 Mbit/s";
}

TEST(Load, MinimalConfigHasSafeDefaults) {
    LoadResult result = load_string(minimal("peers:\n" + peer(peer_a, "10.100.0.2/32")), "gw.yaml");
    ASSERT_TRUE(std::holds_alternative<Config>(result)) << std::get<LoadError>(result).message;
    const Config& config = std::get<Config>(result);
    EXPECT_EQ(config.peers[0].permissions, 0) << "no permissions unless granted";
    EXPECT_FALSE(config.peers[0].has_preshared_key);
    EXPECT_FALSE(config.eal.hugepages);
    EXPECT_EQ(config.workers.lcores, std::vector<unsigned>{1});
}

struct Bad {
    std::string text;
    std::string error;
};

TEST(Load, EveryBadValueNamesItsPlaceAndWhatWasExpected) {
    const std::string ok_peer = peer(peer_a, "10.100.0.2/32");
    const std::vector<Bad> table = {
        {"", "gw.yaml:1:1: configuration: expected a mapping, got nothing"},
        {"interface: [1\n", "gw.yaml:2:1: invalid YAML: end of sequence flow not found"},
        {minimal() + "colour: blue\n",
         "gw.yaml:8:1: configuration: unknown key \"colour\" (expected one of: interface, ports, "
         "workers, eal, exit, peers)"},
        {"ports: []\n", "gw.yaml:1:1: configuration: missing required key \"interface\""},
        {"interface:\n  listen_port: 1\nports: []\n",
         "gw.yaml:2:3: interface: expected exactly one of \"private_key\" or \"private_key_file\""},
        {"interface:\n  private_key: not-a-key\nports: []\n",
         "gw.yaml:2:16: interface.private_key: expected a base64 WireGuard key (44 characters, as "
         "`wg genkey` prints); the value given is not one (not shown: it may be secret)"},
        {"interface:\n  private_key: " + gateway_key + "\n  listen_port: 70000\nports: []\n",
         "gw.yaml:3:16: interface.listen_port: expected an integer from 1 to 65535, got \"70000\""},
        {"interface:\n  private_key: " + gateway_key + "\n  addresses: [10.0.0.1/33]\nports: []\n",
         "gw.yaml:3:15: interface.addresses[0]: expected an IP prefix like 10.0.0.0/24 or "
         "fd00::/64, got \"10.0.0.1/33\""},
        {minimal() + "peers:\n  - public_key: " + peer_a +
             "\n    allowed_ips: [10.0.0.0/8]\n    color: red\n",
         "gw.yaml:11:5: peers[0]: unknown key \"color\" (expected one of: name, public_key, "
         "preshared_key, preshared_key_file, allowed_ips, endpoint, persistent_keepalive, "
         "permissions, rate_limit)"},
        {minimal() + "peers:\n  - allowed_ips: [10.0.0.0/8]\n",
         "gw.yaml:9:5: peers[0]: missing required key \"public_key\""},
        {minimal() + "peers:\n" + peer(peer_a, "10.0.0.0/8", "    endpoint: example.com:51820\n"),
         "gw.yaml:11:15: peers[0].endpoint: expected an endpoint like 198.51.100.2:51820 or "
         "[2001:db8::2]:51820, got \"example.com:51820\""},
        {minimal() + "peers:\n" + peer(peer_a, "10.0.0.0/8", "    permissions: [exit, admin]\n"),
         "gw.yaml:11:25: peers[0].permissions[1]: expected exit, lan or peers, got \"admin\""},
        {minimal() + "peers:\n" + peer(peer_a, "10.0.0.0/8", "    persistent_keepalive: -1\n"),
         "gw.yaml:11:27: peers[0].persistent_keepalive: expected an integer from 0 to 65535, got "
         "\"-1\""},
        {minimal() + "peers:\n" + peer(peer_a, "10.0.0.0/8") + peer(peer_a, "192.168.0.0/16"),
         "gw.yaml:11:17: peers[1]: same public key as peers[0]"},
        {minimal() + "peers:\n" + peer(peer_a, "10.0.0.0/24") + peer(peer_b, "10.0.0.5/32"),
         "gw.yaml:12:19: peers[1].allowed_ips[0]: 10.0.0.5/32 overlaps 10.0.0.0/24 of peers[0]"},
        {minimal() + "peers:\n" + peer(peer_a, "10.100.0.1/32"),
         "gw.yaml:10:19: peers[0].allowed_ips[0]: 10.100.0.1/32 is the gateway's own tunnel "
         "address"},
        {"interface:\n  private_key: " + gateway_key +
             "\nports:\n  - name: wan\n    device: net_null0\n"
             "    address: 198.51.100.1/24\n    next_hop: 203.0.113.1\n",
         "gw.yaml:7:15: ports[0].next_hop: next hop 203.0.113.1 is not inside the port's subnet"},
        {"interface:\n  private_key: " + gateway_key +
             "\nports:\n  - name: up\n    device: net_null0\n"
             "    role: uplink\n    address: 203.0.113.1/24\n",
         "gw.yaml:2:3: ports: expected a port with role wan"},
        {"interface:\n  private_key: " + gateway_key +
             "\nports:\n  - name: wan\n    device: net_null0\n"
             "    role: lan\n    address: 198.51.100.1/24\n",
         "gw.yaml:6:11: ports[0].role: expected wan or uplink, got \"lan\""},
        {"interface:\n  private_key: " + gateway_key +
             "\nports:\n  - name: wan\n    device: net_null0\n"
             "    address6: 198.51.100.1/24\n",
         "gw.yaml:6:15: ports[0].address6: expected an IPv6 prefix, got \"198.51.100.1/24\""},
        {minimal() + "eal:\n  hugepages: maybe\n",
         "gw.yaml:9:14: eal.hugepages: expected true or false, got \"maybe\""},
        {minimal() + "workers:\n  lcores: 3\n",
         "gw.yaml:9:11: workers.lcores: expected a list of lcore numbers, got \"3\""},
        {minimal() + "peers:\n" + peer(peer_a, "10.0.0.0/8") + "  - public_key: " + peer_b +
             "\n    allowed_ips: [11.0.0.0/8]\n    allowed_ips: [12.0.0.0/8]\n",
         "gw.yaml:13:5: peers[1]: key \"allowed_ips\" given twice (first at line 12)"},
    };
    for (const Bad& row : table) {
        EXPECT_EQ(error_of(row.text), row.error) << "---- input:\n" << row.text;
    }
}

TEST(Load, ExitDefaults) {
    LoadResult result = load_string(minimal(), "gw.yaml");
    ASSERT_TRUE(std::holds_alternative<Config>(result)) << std::get<LoadError>(result).message;
    const Exit& exit = std::get<Config>(result).exit;
    EXPECT_TRUE(exit.flow_log.empty()) << "no flow log unless asked for";
    EXPECT_TRUE(exit.mss_clamp);
    EXPECT_EQ(exit.nat.tcp_established_timeout, 7440u);
    EXPECT_EQ(exit.nat.tcp_transitory_timeout, 240u);
    EXPECT_EQ(exit.nat.udp_timeout, 300u);
    EXPECT_EQ(exit.nat.icmp_timeout, 60u);
    EXPECT_EQ(exit.nat.table_size, 65536u);
    EXPECT_EQ(exit.nat.port_first, 1024);
    EXPECT_EQ(exit.nat.port_last, 65535);
}

TEST(Load, ExitSection) {
    LoadResult result = load_string(minimal() + uplink_port +
                                        "exit:\n"
                                        "  flow_log: /var/log/meshgate/flows.jsonl\n"
                                        "  mss_clamp: false\n"
                                        "  nat:\n"
                                        "    tcp_established_timeout: 3600\n"
                                        "    tcp_transitory_timeout: 120\n"
                                        "    udp_timeout: 30\n"
                                        "    icmp_timeout: 10\n"
                                        "    table_size: 1024\n"
                                        "    port_range: [20000, 20001]\n"
                                        "workers:\n  lcores: [1, 2]\n"
                                        "peers:\n" +
                                        peer(peer_a, "10.100.0.2/32",
                                             "    permissions: [exit, lan]\n"
                                             "    rate_limit:\n"
                                             "      ingress: {bytes_per_second: 2500000}\n"
                                             "      egress: {bytes_per_second: 1000, "
                                             "burst_bytes: 1500}\n"),
                                    "gw.yaml");
    ASSERT_TRUE(std::holds_alternative<Config>(result)) << std::get<LoadError>(result).message;
    const Config& config = std::get<Config>(result);
    EXPECT_EQ(config.exit.flow_log, "/var/log/meshgate/flows.jsonl");
    EXPECT_FALSE(config.exit.mss_clamp);
    EXPECT_EQ(config.exit.nat.tcp_established_timeout, 3600u);
    EXPECT_EQ(config.exit.nat.tcp_transitory_timeout, 120u);
    EXPECT_EQ(config.exit.nat.udp_timeout, 30u);
    EXPECT_EQ(config.exit.nat.icmp_timeout, 10u);
    EXPECT_EQ(config.exit.nat.table_size, 1024u);
    EXPECT_EQ(config.exit.nat.port_first, 20000);
    EXPECT_EQ(config.exit.nat.port_last, 20001);
    const Peer& traveller = config.peers[0];
    EXPECT_EQ(traveller.permissions, permission_exit | permission_lan);
    ASSERT_TRUE(traveller.ingress.has_value());
    EXPECT_EQ(traveller.ingress->bytes_per_second, 2500000u);
    EXPECT_EQ(traveller.ingress->burst_bytes, 250000u) << "default burst: a tenth of a second";
    ASSERT_TRUE(traveller.egress.has_value());
    EXPECT_EQ(traveller.egress->bytes_per_second, 1000u);
    EXPECT_EQ(traveller.egress->burst_bytes, 1500u) << "never below one full-size packet";
}

TEST(Load, EveryBadExitValueNamesItsPlaceAndWhatWasExpected) {
    const std::string exit_peer =
        "peers:\n" + peer(peer_a, "10.100.0.2/32", "    permissions: [peers, exit]\n");
    const std::string base = minimal() + uplink_port;
    const std::vector<Bad> table = {
        {minimal() + exit_peer,
         "gw.yaml:11:18: peers[0].permissions: exit needs a port with role uplink (none is "
         "configured)"},
        {base + "  - name: up2\n    device: net_null2\n    role: uplink\n"
                "    address: 192.0.2.1/24\n",
         "gw.yaml:12:5: ports: at most one port may have role uplink"},
        {minimal() + "  - name: up\n    device: net_null1\n    role: uplink\n",
         "gw.yaml:8:5: ports[1]: expected an \"address\" or \"address6\""},
        {base + "exit:\n  flow_log:\n",
         "gw.yaml:14:1: exit.flow_log: expected a file path, got nothing"},
        {base + "exit:\n  flow_log: \"\"\n",
         "gw.yaml:13:13: exit.flow_log: expected a file path, got \"\""},
        {base + "exit:\n  mss_clamp: yes please\n",
         "gw.yaml:13:14: exit.mss_clamp: expected true or false, got \"yes please\""},
        {base + "exit:\n  log: /tmp/x\n",
         "gw.yaml:13:3: exit: unknown key \"log\" (expected one of: flow_log, nat, mss_clamp)"},
        {base + "exit:\n  nat:\n    tcp_timeout: 5\n",
         "gw.yaml:14:5: exit.nat: unknown key \"tcp_timeout\" (expected one of: "
         "tcp_established_timeout, tcp_transitory_timeout, udp_timeout, icmp_timeout, table_size, "
         "port_range)"},
        {base + "exit:\n  nat:\n    udp_timeout: 0\n",
         "gw.yaml:14:18: exit.nat.udp_timeout: expected an integer from 1 to 604800, got \"0\""},
        {base + "exit:\n  nat:\n    icmp_timeout: -5\n",
         "gw.yaml:14:19: exit.nat.icmp_timeout: expected an integer from 1 to 604800, got \"-5\""},
        {base + "exit:\n  nat:\n    tcp_established_timeout: 99999999\n",
         "gw.yaml:14:30: exit.nat.tcp_established_timeout: expected an integer from 1 to 604800, "
         "got \"99999999\""},
        {base + "exit:\n  nat:\n    table_size: 10\n",
         "gw.yaml:14:17: exit.nat.table_size: expected an integer from 64 to 16777216, got \"10\""},
        {base + "exit:\n  nat:\n    port_range: [2000, 1000]\n",
         "gw.yaml:14:17: exit.nat.port_range: expected first <= last, got [2000, 1000]"},
        {base + "exit:\n  nat:\n    port_range: [1000]\n",
         "gw.yaml:14:17: exit.nat.port_range: expected a list of two port numbers [first, last], "
         "got a list of 1"},
        {base + "exit:\n  nat:\n    port_range: 1024-65535\n",
         "gw.yaml:14:17: exit.nat.port_range: expected a list of two port numbers [first, last], "
         "got \"1024-65535\""},
        {base + "exit:\n  nat:\n    port_range: [0, 1000]\n",
         "gw.yaml:14:18: exit.nat.port_range[0]: expected an integer from 1 to 65535, got \"0\""},
        {base + "exit:\n  nat:\n    port_range: [1024, 65536]\n",
         "gw.yaml:14:24: exit.nat.port_range[1]: expected an integer from 1 to 65535, got "
         "\"65536\""},
        {base + "workers:\n  lcores: [1, 2, 3]\nexit:\n  nat:\n    port_range: [5000, 5001]\n",
         "gw.yaml:16:17: exit.nat.port_range: [5000, 5001] holds 2 ports for 3 workers; expected "
         "at least one port per worker"},
        {base + "peers:\n" +
             peer(peer_a, "10.100.0.2/32",
                  "    rate_limit:\n      ingress: {bytes_per_second: 0}\n"),
         "gw.yaml:16:35: peers[0].rate_limit.ingress.bytes_per_second: expected an integer from 1 "
         "to 1099511627776, got \"0\""},
        {base + "peers:\n" +
             peer(peer_a, "10.100.0.2/32",
                  "    rate_limit:\n      egress: {bytes_per_second: 1000, burst_bytes: 1000}\n"),
         "gw.yaml:16:53: peers[0].rate_limit.egress.burst_bytes: expected an integer from 1500 to "
         "1099511627776, got \"1000\""},
        {base + "peers:\n" +
             peer(peer_a, "10.100.0.2/32", "    rate_limit:\n      egress: {burst_bytes: 2000}\n"),
         "gw.yaml:16:15: peers[0].rate_limit.egress: missing required key \"bytes_per_second\""},
        {base + "peers:\n" +
             peer(peer_a, "10.100.0.2/32", "    rate_limit:\n      both: {bytes_per_second: 1}\n"),
         "gw.yaml:16:7: peers[0].rate_limit: unknown key \"both\" (expected one of: ingress, "
         "egress)"},
    };
    for (const Bad& row : table) {
        EXPECT_EQ(error_of(row.text), row.error) << "---- input:\n" << row.text;
    }
}

TEST(Load, SecretsNeverAppearInErrors) {
    // A private key with one character wrong: the message must not contain any of it.
    std::string almost = gateway_key;
    almost[43] = 'x';
    std::string message = error_of("interface:\n  private_key: " + almost + "\nports: []\n");
    EXPECT_EQ(message.find(almost.substr(0, 20)), std::string::npos) << message;
}

TEST(Load, KeyFilesMustBePrivate) {
    char path[] = "/tmp/meshgate-key-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    std::string line = gateway_key + "\n";
    ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    ::close(fd);
    std::string text =
        "interface:\n  private_key_file: " + std::string(path) +
        "\nports:\n  - name: wan\n    device: net_null0\n    address: 198.51.100.1/24\n";
    ::chmod(path, 0644);
    EXPECT_EQ(error_of(text), "gw.yaml:2:21: interface.private_key_file: key file \"" +
                                  std::string(path) +
                                  "\" is accessible by group or others (mode 0644); chmod 600 it");
    ::chmod(path, 0600);
    LoadResult result = load_string(text, "gw.yaml");
    ASSERT_TRUE(std::holds_alternative<Config>(result)) << std::get<LoadError>(result).message;
    EXPECT_EQ(crypto::to_base64(std::get<Config>(result).interface.private_key.span()),
              gateway_key);
    std::remove(path);
}

TEST(EalArguments, FollowTheConfigurationAndOverridesComeLast) {
    Config config = std::get<Config>(
        load_string(minimal() + "workers:\n  lcores: [1, 2]\neal:\n  memory_mb: 512\n", "gw.yaml"));
    auto args = eal_arguments(config, {"--log-level", "debug"});
    std::vector<std::string> expected = {
        "meshgate",  "-l",          "0,1,2",  "--main-lcore", "0",        "-m",          "512",
        "--no-huge", "--no-shconf", "--vdev", "net_null0",    "--no-pci", "--log-level", "debug"};
    EXPECT_EQ(args, expected);
}

// An af_packet uplink receives datagrams the kernel reassembled: its frames are made large
// enough (framesz, and blocks that hold one), unless its device string says otherwise. WAN
// ports and other devices keep the driver's defaults.
TEST(EalArguments, AfPacketUplinkGetsLargeFrames) {
    const std::string ports =
        "ports:\n"
        "  - name: wan\n"
        "    device: net_af_packet0,iface=eth0\n"
        "    address: 192.0.2.1/24\n"
        "  - name: up\n"
        "    device: net_af_packet1,iface=up0\n"
        "    role: uplink\n"
        "    address: 203.0.113.1/24\n";
    std::string text = minimal();
    text = text.substr(0, text.find("ports:")) + ports;
    LoadResult result = load_string(text, "gw.yaml");
    ASSERT_TRUE(std::holds_alternative<Config>(result)) << std::get<LoadError>(result).message;
    Config config = std::get<Config>(result);
    EXPECT_EQ(af_packet_frame_size(config.ports[0]), af_packet_default_frame_size);
    EXPECT_EQ(af_packet_frame_size(config.ports[1]), af_packet_uplink_frame_size);
    auto args = eal_arguments(config);
    EXPECT_NE(std::find(args.begin(), args.end(), "net_af_packet0,iface=eth0,qpairs=2"),
              args.end());
    EXPECT_NE(std::find(args.begin(), args.end(),
                        "net_af_packet1,iface=up0,qpairs=2,framesz=8192,blocksz=8192"),
              args.end());

    // The operator's own frame size (and queue count) stand.
    config.ports[1].device = "net_af_packet1,iface=up0,framesz=4096,qpairs=3";
    EXPECT_EQ(af_packet_frame_size(config.ports[1]), 4096u);
    args = eal_arguments(config);
    EXPECT_NE(std::find(args.begin(), args.end(), "net_af_packet1,iface=up0,framesz=4096,qpairs=3"),
              args.end());

    config.ports[1].device = "net_af_xdp0,iface=up0";
    EXPECT_EQ(af_packet_frame_size(config.ports[1]), 0u);
    args = eal_arguments(config);
    EXPECT_NE(std::find(args.begin(), args.end(), "net_af_xdp0,iface=up0,queue_count=2"),
              args.end());
    config.ports[1].device = "net_af_xdp0,iface=up0,queue_count=1";
    args = eal_arguments(config);
    EXPECT_NE(std::find(args.begin(), args.end(), "net_af_xdp0,iface=up0,queue_count=1"),
              args.end());
}

}  // namespace
}  // namespace meshgate::config
