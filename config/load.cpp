// YAML to Config. yaml-cpp's exceptions end here; the rest of the program sees LoadResult.
#include "config/load.hpp"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "config/validate.hpp"
#include "crypto/secure.hpp"

namespace meshgate::config {
namespace {

// Thrown inside this file only, with the complete message; load_* convert it.
struct Problem : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
            return "nothing";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a mapping";
        case YAML::NodeType::Scalar:
            return "\"" + node.Scalar() + "\"";
        default:
            return "an undefined value";
    }
}

class Reader {
  public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    SourceMark mark(const YAML::Node& node) const {
        return {node.Mark().line + 1, node.Mark().column + 1};
    }

    [[noreturn]] void fail(const YAML::Node& node, const std::string& path,
                           const std::string& what) const {
        SourceMark at = mark(node);
        throw Problem(file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                      ": " + path + ": " + what);
    }

    [[noreturn]] void expected(const YAML::Node& node, const std::string& path,
                               const std::string& what) const {
        fail(node, path, "expected " + what + ", got " + describe(node));
    }

    // Checks a mapping's keys: each known, none twice.
    void keys(const YAML::Node& node, const std::string& path,
              std::initializer_list<const char*> allowed) const {
        if (!node.IsMap()) {
            expected(node, path, "a mapping");
        }
        std::map<std::string, YAML::Node> seen;
        for (auto it = node.begin(); it != node.end(); ++it) {
            const std::string key = it->first.Scalar();
            bool known = false;
            std::string list;
            for (const char* name : allowed) {
                known |= key == name;
                list += list.empty() ? name : std::string(", ") + name;
            }
            if (!known) {
                fail(it->first, path,
                     "unknown key \"" + key + "\" (expected one of: " + list + ")");
            }
            auto [first, fresh] = seen.emplace(key, it->first);
            if (!fresh) {
                // Point at the later of the two, and name the other.
                const bool this_is_later = mark(it->first).line > mark(first->second).line;
                const YAML::Node later = this_is_later ? it->first : first->second;
                const YAML::Node earlier = this_is_later ? first->second : it->first;
                fail(later, path,
                     "key \"" + key + "\" given twice (first at line " +
                         std::to_string(mark(earlier).line) + ")");
            }
        }
    }

    const YAML::Node required(const YAML::Node& map, const std::string& path,
                              const char* key) const {
        YAML::Node value = map[key];
        if (!value) {
            fail(map, path, std::string("missing required key \"") + key + "\"");
        }
        return value;
    }

    std::string scalar(const YAML::Node& node, const std::string& path,
                       const std::string& what) const {
        if (!node.IsScalar()) {
            expected(node, path, what);
        }
        return node.Scalar();
    }

    std::uint64_t integer(const YAML::Node& node, const std::string& path, std::uint64_t low,
                          std::uint64_t high) const {
        const std::string what =
            "an integer from " + std::to_string(low) + " to " + std::to_string(high);
        std::string text = scalar(node, path, what);
        std::size_t used = 0;
        std::uint64_t value = 0;
        try {
            value = std::stoull(text, &used, 10);
        } catch (const std::exception&) {
            expected(node, path, what);
        }
        if (used != text.size() || text.front() == '-' || value < low || value > high) {
            expected(node, path, what);
        }
        return value;
    }

    bool boolean(const YAML::Node& node, const std::string& path) const {
        std::string text = scalar(node, path, "true or false");
        if (text == "true") {
            return true;
        }
        if (text == "false") {
            return false;
        }
        expected(node, path, "true or false");
    }

    Prefix prefix(const YAML::Node& node, const std::string& path) const {
        const char* what = "an IP prefix like 10.0.0.0/24 or fd00::/64";
        auto parsed = Prefix::parse(scalar(node, path, what));
        if (!parsed) {
            expected(node, path, what);
        }
        return *parsed;
    }

    IpAddress address(const YAML::Node& node, const std::string& path) const {
        const char* what = "an IP address like 198.51.100.1 or 2001:db8::1";
        auto parsed = IpAddress::parse(scalar(node, path, what));
        if (!parsed) {
            expected(node, path, what);
        }
        return *parsed;
    }

    control::Endpoint endpoint(const YAML::Node& node, const std::string& path) const {
        const char* what = "an endpoint like 198.51.100.2:51820 or [2001:db8::2]:51820";
        auto parsed = control::Endpoint::parse(scalar(node, path, what));
        if (!parsed) {
            expected(node, path, what);
        }
        return *parsed;
    }

    crypto::PublicKey public_key(const YAML::Node& node, const std::string& path) const {
        auto key = crypto::public_key_from_base64(scalar(node, path, "a base64 public key"));
        if (!key) {
            fail(node, path,
                 "expected a base64 WireGuard key (44 characters, as `wg pubkey` prints)");
        }
        return *key;
    }

    // Secrets are never echoed back in messages.
    crypto::PrivateKey secret_key(const YAML::Node& node, const std::string& path) const {
        if (!node.IsScalar()) {
            expected(node, path, "a base64 key");
        }
        auto key = crypto::private_key_from_base64(node.Scalar());
        if (!key) {
            fail(node, path,
                 "expected a base64 WireGuard key (44 characters, as `wg genkey` prints); "
                 "the value given is not one (not shown: it may be secret)");
        }
        return *key;
    }

    // A key file as `wg` insists on: not readable or writable by group or others.
    crypto::PrivateKey key_file(const YAML::Node& node, const std::string& path) const {
        std::string name = scalar(node, path, "a file name");
        struct stat status {};
        if (::stat(name.c_str(), &status) != 0) {
            fail(node, path, "cannot read key file \"" + name + "\"");
        }
        if ((status.st_mode & 077) != 0) {
            std::ostringstream mode;
            mode << std::oct << (status.st_mode & 0777);
            fail(node, path,
                 "key file \"" + name + "\" is accessible by group or others (mode 0" + mode.str() +
                     "); chmod 600 it");
        }
        std::ifstream in(name);
        std::string line;
        std::getline(in, line);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.pop_back();
        }
        auto key = crypto::private_key_from_base64(line);
        crypto::wipe(line.data(), line.size());
        if (!key) {
            fail(node, path, "key file \"" + name + "\" does not hold a base64 WireGuard key");
        }
        return *key;
    }

    template <typename Each>
    void list(const YAML::Node& node, const std::string& path, const std::string& what,
              Each each) const {
        if (!node.IsSequence()) {
            expected(node, path, "a list of " + what);
        }
        for (std::size_t i = 0; i < node.size(); ++i) {
            each(node[i], path + "[" + std::to_string(i) + "]");
        }
    }

  private:
    std::string file_;
};

void read_interface(const Reader& r, const YAML::Node& node, Interface& out) {
    const std::string path = "interface";
    r.keys(node, path, {"private_key", "private_key_file", "listen_port", "addresses"});
    out.mark = r.mark(node);
    const bool inline_key = static_cast<bool>(node["private_key"]);
    const bool file_key = static_cast<bool>(node["private_key_file"]);
    if (inline_key == file_key) {
        r.fail(node, path, "expected exactly one of \"private_key\" or \"private_key_file\"");
    }
    if (inline_key) {
        out.private_key = r.secret_key(node["private_key"], path + ".private_key");
    } else {
        out.private_key_file = node["private_key_file"].Scalar();
        out.private_key = r.key_file(node["private_key_file"], path + ".private_key_file");
    }
    if (node["listen_port"]) {
        out.listen_port = static_cast<std::uint16_t>(
            r.integer(node["listen_port"], path + ".listen_port", 1, 65535));
    }
    if (node["addresses"]) {
        r.list(node["addresses"], path + ".addresses", "IP prefixes",
               [&](const YAML::Node& item, const std::string& at) {
                   out.addresses.push_back(r.prefix(item, at));
               });
    }
}

void read_port(const Reader& r, const YAML::Node& node, const std::string& path, Port& out) {
    r.keys(node, path,
           {"name", "device", "role", "address", "address6", "next_hop", "next_hop6", "mtu"});
    out.mark = r.mark(node);
    out.name = r.scalar(r.required(node, path, "name"), path + ".name", "a name");
    out.device = r.scalar(r.required(node, path, "device"), path + ".device",
                          "a PCI address or a DPDK vdev string");
    if (node["role"]) {
        std::string role = r.scalar(node["role"], path + ".role", "wan or uplink");
        if (role == "wan") {
            out.role = PortRole::wan;
        } else if (role == "uplink") {
            out.role = PortRole::uplink;
        } else {
            r.expected(node["role"], path + ".role", "wan or uplink");
        }
    }
    auto family = [&](const char* key, bool v6) -> std::optional<Prefix> {
        if (!node[key]) {
            return std::nullopt;
        }
        Prefix prefix = r.prefix(node[key], path + "." + key);
        if (prefix.address.is_v6 != v6) {
            r.expected(node[key], path + "." + key, v6 ? "an IPv6 prefix" : "an IPv4 prefix");
        }
        return prefix;
    };
    out.address = family("address", false);
    out.address6 = family("address6", true);
    auto hop = [&](const char* key,
                   const std::optional<Prefix>& subnet) -> std::optional<IpAddress> {
        if (!node[key]) {
            return std::nullopt;
        }
        IpAddress address = r.address(node[key], path + "." + key);
        if (!subnet || !subnet->contains(address)) {
            r.fail(node[key], path + "." + key,
                   "next hop " + address.to_string() + " is not inside the port's subnet");
        }
        return address;
    };
    out.next_hop = hop("next_hop", out.address);
    out.next_hop6 = hop("next_hop6", out.address6);
    if (node["mtu"]) {
        out.mtu = static_cast<std::uint16_t>(r.integer(node["mtu"], path + ".mtu", 576, 9216));
    }
    if (!out.address && !out.address6) {
        r.fail(node, path, "expected an \"address\" or \"address6\"");
    }
}

RateLimit read_rate(const Reader& r, const YAML::Node& node, const std::string& path) {
    r.keys(node, path, {"bytes_per_second", "burst_bytes"});
    RateLimit rate;
    rate.bytes_per_second = r.integer(r.required(node, path, "bytes_per_second"),
                                      path + ".bytes_per_second", 1, 1ULL << 40);
    rate.burst_bytes = node["burst_bytes"]
                           ? r.integer(node["burst_bytes"], path + ".burst_bytes", 1500, 1ULL << 40)
                           : std::max<std::uint64_t>(rate.bytes_per_second / 10, 1500);
    return rate;
}

// Flow timeouts are at least a second and at most a week.
constexpr std::uint64_t max_timeout_seconds = 7 * 24 * 3600;

void read_port_range(const Reader& r, const YAML::Node& node, const std::string& path, Nat& out) {
    const char* what = "a list of two port numbers [first, last]";
    if (!node.IsSequence()) {
        r.expected(node, path, what);
    }
    if (node.size() != 2) {
        r.fail(node, path,
               std::string("expected ") + what + ", got a list of " + std::to_string(node.size()));
    }
    const std::uint64_t first = r.integer(node[0], path + "[0]", 1, 65535);
    const std::uint64_t last = r.integer(node[1], path + "[1]", 1, 65535);
    if (first > last) {
        r.fail(node, path,
               "expected first <= last, got [" + std::to_string(first) + ", " +
                   std::to_string(last) + "]");
    }
    out.port_first = static_cast<std::uint16_t>(first);
    out.port_last = static_cast<std::uint16_t>(last);
    out.port_range_mark = r.mark(node);
}

void read_nat(const Reader& r, const YAML::Node& node, Nat& out) {
    const std::string path = "exit.nat";
    r.keys(node, path,
           {"tcp_established_timeout", "tcp_transitory_timeout", "udp_timeout", "icmp_timeout",
            "table_size", "port_range"});
    auto timeout = [&](const char* key, std::uint32_t& value) {
        if (node[key]) {
            value = static_cast<std::uint32_t>(
                r.integer(node[key], path + "." + key, 1, max_timeout_seconds));
        }
    };
    timeout("tcp_established_timeout", out.tcp_established_timeout);
    timeout("tcp_transitory_timeout", out.tcp_transitory_timeout);
    timeout("udp_timeout", out.udp_timeout);
    timeout("icmp_timeout", out.icmp_timeout);
    if (node["table_size"]) {
        out.table_size = static_cast<std::uint32_t>(
            r.integer(node["table_size"], path + ".table_size", 64, 1 << 24));
    }
    if (node["port_range"]) {
        read_port_range(r, node["port_range"], path + ".port_range", out);
    }
}

void read_exit(const Reader& r, const YAML::Node& node, Exit& out) {
    const std::string path = "exit";
    r.keys(node, path, {"flow_log", "nat", "mss_clamp"});
    out.mark = r.mark(node);
    if (node["flow_log"]) {
        out.flow_log = r.scalar(node["flow_log"], path + ".flow_log", "a file path");
        if (out.flow_log.empty()) {
            r.expected(node["flow_log"], path + ".flow_log", "a file path");
        }
    }
    if (node["nat"]) {
        read_nat(r, node["nat"], out.nat);
    }
    if (node["mss_clamp"]) {
        out.mss_clamp = r.boolean(node["mss_clamp"], path + ".mss_clamp");
    }
}

void read_peer(const Reader& r, const YAML::Node& node, const std::string& path, Peer& out) {
    r.keys(node, path,
           {"name", "public_key", "preshared_key", "preshared_key_file", "allowed_ips", "endpoint",
            "persistent_keepalive", "permissions", "rate_limit"});
    out.mark = r.mark(node);
    const YAML::Node key = r.required(node, path, "public_key");
    out.public_key = r.public_key(key, path + ".public_key");
    out.public_key_mark = r.mark(key);
    out.name = node["name"] ? r.scalar(node["name"], path + ".name", "a name")
                            : crypto::to_base64(out.public_key).substr(0, 8);
    if (node["preshared_key"] && node["preshared_key_file"]) {
        r.fail(node, path, "expected at most one of \"preshared_key\" or \"preshared_key_file\"");
    }
    if (node["preshared_key"]) {
        out.preshared_key = r.secret_key(node["preshared_key"], path + ".preshared_key");
        out.has_preshared_key = true;
    } else if (node["preshared_key_file"]) {
        out.preshared_key = r.key_file(node["preshared_key_file"], path + ".preshared_key_file");
        out.has_preshared_key = true;
    }
    r.list(r.required(node, path, "allowed_ips"), path + ".allowed_ips", "IP prefixes",
           [&](const YAML::Node& item, const std::string& at) {
               // As wg does, 10.0.0.7/24 means 10.0.0.0/24.
               out.allowed_ips.push_back(r.prefix(item, at).network());
               out.allowed_ip_marks.push_back(r.mark(item));
           });
    if (node["endpoint"]) {
        out.endpoint = r.endpoint(node["endpoint"], path + ".endpoint");
    }
    if (node["persistent_keepalive"]) {
        out.persistent_keepalive = static_cast<std::uint16_t>(
            r.integer(node["persistent_keepalive"], path + ".persistent_keepalive", 0, 65535));
    }
    if (node["permissions"]) {
        out.permissions_mark = r.mark(node["permissions"]);
        r.list(node["permissions"], path + ".permissions", "exit, lan or peers",
               [&](const YAML::Node& item, const std::string& at) {
                   std::string name = r.scalar(item, at, "exit, lan or peers");
                   if (name == "exit") {
                       out.permissions |= permission_exit;
                   } else if (name == "lan") {
                       out.permissions |= permission_lan;
                   } else if (name == "peers") {
                       out.permissions |= permission_peers;
                   } else {
                       r.expected(item, at, "exit, lan or peers");
                   }
               });
    }
    if (node["rate_limit"]) {
        const YAML::Node rate = node["rate_limit"];
        r.keys(rate, path + ".rate_limit", {"ingress", "egress"});
        if (rate["ingress"]) {
            out.ingress = read_rate(r, rate["ingress"], path + ".rate_limit.ingress");
        }
        if (rate["egress"]) {
            out.egress = read_rate(r, rate["egress"], path + ".rate_limit.egress");
        }
    }
}

Config read(const YAML::Node& root, const std::string& name) {
    Reader r(name);
    Config config;
    config.file = name;
    r.keys(root, "configuration", {"interface", "ports", "workers", "eal", "exit", "peers"});
    read_interface(r, r.required(root, "configuration", "interface"), config.interface);
    r.list(r.required(root, "configuration", "ports"), "ports", "ports",
           [&](const YAML::Node& node, const std::string& path) {
               read_port(r, node, path, config.ports.emplace_back());
           });
    if (const YAML::Node workers = root["workers"]) {
        r.keys(workers, "workers", {"lcores", "control_lcore", "idle_sleep_us"});
        if (workers["idle_sleep_us"]) {
            config.workers.idle_sleep_us = static_cast<unsigned>(
                r.integer(workers["idle_sleep_us"], "workers.idle_sleep_us", 0, 100000));
        }
        if (workers["lcores"]) {
            config.workers.lcores.clear();
            r.list(workers["lcores"], "workers.lcores", "lcore numbers",
                   [&](const YAML::Node& node, const std::string& path) {
                       config.workers.lcores.push_back(
                           static_cast<unsigned>(r.integer(node, path, 0, 127)));
                   });
            if (config.workers.lcores.empty()) {
                r.fail(workers["lcores"], "workers.lcores", "expected at least one lcore");
            }
        }
        if (workers["control_lcore"]) {
            config.workers.control_lcore = static_cast<unsigned>(
                r.integer(workers["control_lcore"], "workers.control_lcore", 0, 127));
        }
    }
    if (const YAML::Node eal = root["eal"]) {
        r.keys(eal, "eal", {"hugepages", "memory_mb", "args"});
        if (eal["hugepages"]) {
            config.eal.hugepages = r.boolean(eal["hugepages"], "eal.hugepages");
        }
        if (eal["memory_mb"]) {
            config.eal.memory_mb =
                static_cast<unsigned>(r.integer(eal["memory_mb"], "eal.memory_mb", 64, 1 << 20));
        }
        if (eal["args"]) {
            r.list(eal["args"], "eal.args", "EAL arguments",
                   [&](const YAML::Node& node, const std::string& path) {
                       config.eal.args.push_back(r.scalar(node, path, "an EAL argument"));
                   });
        }
    }
    if (const YAML::Node exit = root["exit"]) {
        read_exit(r, exit, config.exit);
    }
    if (root["peers"] && !root["peers"].IsNull()) {
        r.list(root["peers"], "peers", "peers",
               [&](const YAML::Node& node, const std::string& path) {
                   read_peer(r, node, path, config.peers.emplace_back());
               });
    }
    return config;
}

LoadResult load(const std::string& name, const std::function<YAML::Node()>& parse) {
    try {
        YAML::Node root = parse();
        if (!root || root.IsNull()) {
            return LoadError{name + ":1:1: configuration: expected a mapping, got nothing"};
        }
        Config config = read(root, name);
        if (auto problem = validate(config)) {
            return LoadError{*problem};
        }
        return config;
    } catch (const Problem& problem) {
        return LoadError{problem.what()};
    } catch (const YAML::BadFile&) {
        return LoadError{name + ": cannot read the file"};
    } catch (const YAML::Exception& error) {
        return LoadError{name + ":" + std::to_string(error.mark.line + 1) + ":" +
                         std::to_string(error.mark.column + 1) + ": invalid YAML: " + error.msg};
    }
}

}  // namespace

LoadResult load_file(const std::string& path) {
    return load(path, [&path] { return YAML::LoadFile(path); });
}

LoadResult load_string(const std::string& text, const std::string& name) {
    return load(name, [&text] { return YAML::Load(text); });
}

namespace {

bool is_af_packet(const Port& port) {
    return port.device.rfind("net_af_packet", 0) == 0;
}

// The value of `key=` among a vdev string's comma-separated arguments.
std::optional<std::string> device_argument(const std::string& device, const std::string& key) {
    const std::string needle = "," + key + "=";
    const std::size_t at = device.find(needle);
    if (at == std::string::npos) {
        return std::nullopt;
    }
    const std::size_t start = at + needle.size();
    return device.substr(start, device.find(',', start) - start);
}

}  // namespace

std::uint32_t af_packet_frame_size(const Port& port) {
    if (!is_af_packet(port)) {
        return 0;
    }
    if (auto given = device_argument(port.device, "framesz")) {
        try {
            return static_cast<std::uint32_t>(std::stoul(*given));
        } catch (const std::exception&) {
            return af_packet_default_frame_size;  // the driver refuses it at start
        }
    }
    return port.role == PortRole::uplink ? af_packet_uplink_frame_size
                                         : af_packet_default_frame_size;
}

std::string where(const Config& config, const SourceMark& mark) {
    return config.file + ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column) + ": ";
}

std::vector<std::string> eal_arguments(const Config& config,
                                       const std::vector<std::string>& overrides) {
    std::vector<std::string> args = {"meshgate"};
    std::string lcores = std::to_string(config.workers.control_lcore);
    for (unsigned lcore : config.workers.lcores) {
        lcores += "," + std::to_string(lcore);
    }
    // EAL refuses two lcore options: a command-line map (e.g. --lcores '0@0,1@1,2@1' to share
    // cores in tests) replaces ours.
    bool lcores_overridden = false;
    for (const std::string& arg : overrides) {
        lcores_overridden |= arg == "-l" || arg == "--lcores" || arg == "-c";
    }
    if (!lcores_overridden) {
        args.insert(args.end(), {"-l", lcores});
    }
    args.insert(args.end(), {"--main-lcore", std::to_string(config.workers.control_lcore)});
    args.insert(args.end(), {"-m", std::to_string(config.eal.memory_mb)});
    if (!config.eal.hugepages) {
        // Works anywhere, slower: no hugepages, no shared runtime files.
        args.insert(args.end(), {"--no-huge", "--no-shconf"});
    }
    bool any_pci = false;
    const std::string queues = std::to_string(config.workers.lcores.size() + 1);
    for (const Port& port : config.ports) {
        bool vdev = port.device.rfind("net_", 0) == 0;
        any_pci |= !vdev;
        std::string device = port.device;
        if (is_af_packet(port)) {
            if (!device_argument(device, "qpairs")) {
                device += ",qpairs=" + queues;
            }
            if (!device_argument(device, "framesz") &&
                af_packet_frame_size(port) != af_packet_default_frame_size) {
                // A block holds whole frames: at least one.
                const std::string frame = std::to_string(af_packet_frame_size(port));
                device += ",framesz=" + frame;
                if (!device_argument(device, "blocksz")) {
                    device += ",blocksz=" + frame;
                }
            }
        } else if (device.rfind("net_af_xdp", 0) == 0 && !device_argument(device, "queue_count")) {
            device += ",queue_count=" + queues;
        }
        args.insert(args.end(), {vdev ? "--vdev" : "-a", device});
    }
    if (!any_pci) {
        args.push_back("--no-pci");
    }
    args.insert(args.end(), config.eal.args.begin(), config.eal.args.end());
    args.insert(args.end(), overrides.begin(), overrides.end());
    return args;
}

}  // namespace meshgate::config
