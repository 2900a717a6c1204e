// Configuration loading: the examples load; every bad value gets file:line:column and what
// was expected (exact strings, table-driven); secrets never appear in messages; key files
// readable by others are refused; EAL arguments follow the configuration.
#include "config/load.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

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
    EXPECT_EQ(config.peers[0].permissions, permission_peers);
    EXPECT_EQ(config.interface.listen_port, 51820);
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
         "workers, eal, peers)"},
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

}  // namespace
}  // namespace meshgate::config
