#include "config/validate.hpp"

#include <map>
#include <set>

#include "crypto/x25519.hpp"

namespace meshgate::config {
namespace {

std::optional<std::string> check_ports(const Config& config) {
    std::set<std::string> names;
    bool wan = false;
    int uplinks = 0;
    for (const Port& port : config.ports) {
        if (!names.insert(port.name).second) {
            return where(config, port.mark) + "ports: port name \"" + port.name + "\" used twice";
        }
        wan |= port.role == PortRole::wan;
        uplinks += port.role == PortRole::uplink;
        if (uplinks > 1) {
            return where(config, port.mark) + "ports: at most one port may have role uplink";
        }
    }
    if (!wan) {
        return where(config, config.interface.mark) + "ports: expected a port with role wan";
    }
    return std::nullopt;
}

std::optional<std::string> check_peers(const Config& config) {
    std::map<crypto::PublicKey, std::size_t> seen;
    crypto::PublicKey own = crypto::derive_public_key(config.interface.private_key);
    struct Owned {
        Prefix prefix;
        std::size_t peer;
    };
    std::vector<Owned> owned;
    for (std::size_t i = 0; i < config.peers.size(); ++i) {
        const Peer& peer = config.peers[i];
        const std::string at =
            where(config, peer.public_key_mark) + "peers[" + std::to_string(i) + "]: ";
        if (peer.public_key == own) {
            return at + "this is the gateway's own public key";
        }
        if (auto [it, fresh] = seen.emplace(peer.public_key, i); !fresh) {
            return at + "same public key as peers[" + std::to_string(it->second) + "]";
        }
        for (std::size_t a = 0; a < peer.allowed_ips.size(); ++a) {
            const Prefix& prefix = peer.allowed_ips[a];
            const std::string here = where(config, peer.allowed_ip_marks[a]) + "peers[" +
                                     std::to_string(i) + "].allowed_ips[" + std::to_string(a) +
                                     "]: ";
            for (const Owned& other : owned) {
                if (other.peer != i && other.prefix.overlaps(prefix)) {
                    return here + prefix.to_string() + " overlaps " + other.prefix.to_string() +
                           " of peers[" + std::to_string(other.peer) + "]";
                }
            }
            for (const Prefix& gateway : config.interface.addresses) {
                if (prefix.contains(gateway.address) && prefix.length == gateway.address.bits()) {
                    return here + prefix.to_string() + " is the gateway's own tunnel address";
                }
            }
            owned.push_back({prefix, i});
        }
    }
    return std::nullopt;
}

// Exit traffic needs somewhere to go, and every worker needs uplink ports of its own
// (return traffic is steered to a worker by its port).
std::optional<std::string> check_exit(const Config& config) {
    bool uplink = false;
    for (const Port& port : config.ports) {
        uplink |= port.role == PortRole::uplink;
    }
    for (std::size_t i = 0; i < config.peers.size() && !uplink; ++i) {
        const Peer& peer = config.peers[i];
        if ((peer.permissions & permission_exit) != 0) {
            return where(config, peer.permissions_mark) + "peers[" + std::to_string(i) +
                   "].permissions: exit needs a port with role uplink (none is configured)";
        }
    }
    const Nat& nat = config.exit.nat;
    const std::size_t ports = nat.port_last - nat.port_first + 1;
    const std::size_t workers = config.workers.lcores.size();
    if (ports < workers) {
        return where(config, nat.port_range_mark) + "exit.nat.port_range: [" +
               std::to_string(nat.port_first) + ", " + std::to_string(nat.port_last) + "] holds " +
               std::to_string(ports) + " ports for " + std::to_string(workers) +
               " workers; expected at least one port per worker";
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> validate(const Config& config) {
    if (auto problem = check_ports(config)) {
        return problem;
    }
    if (auto problem = check_peers(config)) {
        return problem;
    }
    return check_exit(config);
}

}  // namespace meshgate::config
