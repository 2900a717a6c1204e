#include "dataplane/allowed_ips.hpp"

#include <rte_byteorder.h>
#include <rte_errno.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace meshgate::dataplane {
namespace {}  // namespace

Prefix canonical(Prefix prefix) {
    const unsigned bits = prefix.address.is_v6 ? 128 : 32;
    if (prefix.length > bits) {
        prefix.length = static_cast<std::uint8_t>(bits);
    }
    for (unsigned byte = 0; byte < bits / 8; ++byte) {
        unsigned first_bit = byte * 8;
        if (first_bit >= prefix.length) {
            prefix.address.bytes[byte] = 0;
        } else if (first_bit + 8 > prefix.length) {
            unsigned keep = prefix.length - first_bit;
            prefix.address.bytes[byte] &= static_cast<std::uint8_t>(0xFF00u >> keep);
        }
    }
    return prefix;
}

AllowedIps::AllowedIps(const std::string& name, rte_rcu_qsbr* rcu, Limits limits) : rcu_(rcu) {
    for (int i = 0; i < 2; ++i) {
        std::string suffix = name + "_" + std::to_string(i);
        rte_fib_conf v4{};
        v4.type = RTE_FIB_DIR24_8;
        v4.default_nh = no_peer;
        v4.max_routes = limits.max_v4_routes;
        v4.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
        v4.dir24_8.num_tbl8 = limits.v4_tbl8_groups;
        copies_[i].v4 = rte_fib_create(("a4_" + suffix).c_str(), SOCKET_ID_ANY, &v4);

        rte_fib6_conf v6{};
        v6.type = RTE_FIB6_TRIE;
        v6.default_nh = no_peer;
        v6.max_routes = limits.max_v6_routes;
        v6.trie.nh_sz = RTE_FIB6_TRIE_4B;
        v6.trie.num_tbl8 = limits.v6_tbl8_groups;
        copies_[i].v6 = rte_fib6_create(("a6_" + suffix).c_str(), SOCKET_ID_ANY, &v6);
        if (copies_[i].v4 == nullptr || copies_[i].v6 == nullptr) {
            // Cold path, at start-up: no memory for the tables is a configuration error. The
            // destructor will not run, so free what was made.
            int error = rte_errno;
            this->~AllowedIps();
            rte_errno = error;
            throw std::runtime_error("allowed IPs: cannot create FIB tables (rte_errno " +
                                     std::to_string(rte_errno) + "); give EAL more memory");
        }
    }
}

AllowedIps::~AllowedIps() {
    for (Copy& copy : copies_) {
        rte_fib_free(copy.v4);
        rte_fib6_free(copy.v6);
    }
}

bool AllowedIps::write(Copy& copy, const AllowedIpChange& change) const {
    const Prefix& prefix = change.prefix;
    int rc;
    if (prefix.address.is_v6) {
        rc = change.peer == no_peer
                 ? rte_fib6_delete(copy.v6, prefix.address.bytes.data(), prefix.length)
                 : rte_fib6_add(copy.v6, prefix.address.bytes.data(), prefix.length, change.peer);
    } else {
        std::uint32_t address = prefix.address.v4_host_order();
        rc = change.peer == no_peer ? rte_fib_delete(copy.v4, address, prefix.length)
                                    : rte_fib_add(copy.v4, address, prefix.length, change.peer);
    }
    // Deleting what is absent is not an error for us: the authoritative map decides.
    return rc == 0 || (change.peer == no_peer && rc == -ENOENT);
}

bool AllowedIps::write_all(Copy& copy, std::span<const AllowedIpChange> changes) const {
    for (const AllowedIpChange& change : changes) {
        if (!write(copy, change)) {
            return false;
        }
    }
    return true;
}

void AllowedIps::wait_for_readers() const {
    if (rcu_ != nullptr) {
        rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    }
}

bool AllowedIps::apply(std::span<const AllowedIpChange> changes) {
    std::vector<AllowedIpChange> canonical_changes;
    canonical_changes.reserve(changes.size());
    for (const AllowedIpChange& change : changes) {
        canonical_changes.push_back({canonical(change.prefix), change.peer});
    }
    const unsigned active = active_.load(std::memory_order_relaxed);
    Copy& standby = copies_[active ^ 1];
    if (!write_all(standby, canonical_changes)) {
        // Undo on the standby copy: restore every touched prefix to its authoritative value.
        for (const AllowedIpChange& change : canonical_changes) {
            auto it = routes_.find(change.prefix);
            write(standby, {change.prefix, it == routes_.end() ? no_peer : it->second});
        }
        return false;
    }
    active_.store(active ^ 1, std::memory_order_release);
    wait_for_readers();
    // The old copy has no readers left: replay. It held the same routes as the standby did,
    // with the same capacity, so the replay cannot fail where the first pass succeeded.
    write_all(copies_[active], canonical_changes);
    for (const AllowedIpChange& change : canonical_changes) {
        if (change.peer == no_peer) {
            routes_.erase(change.prefix);
        } else {
            routes_[change.prefix] = change.peer;
        }
    }
    return true;
}

bool AllowedIps::remove_peer(PeerId peer) {
    std::vector<AllowedIpChange> changes;
    for (const Prefix& prefix : prefixes_of(peer)) {
        changes.push_back({prefix, no_peer});
    }
    return changes.empty() || apply(changes);
}

std::vector<Prefix> AllowedIps::prefixes_of(PeerId peer) const {
    std::vector<Prefix> out;
    for (const auto& [prefix, owner] : routes_) {
        if (owner == peer) {
            out.push_back(prefix);
        }
    }
    return out;
}

void AllowedIps::lookup_v4(const std::uint32_t* addresses_host_order, PeerId* peers,
                           unsigned count) const {
    const Copy& copy = copies_[active_.load(std::memory_order_acquire)];
    std::uint64_t next_hops[64];
    for (unsigned done = 0; done < count; done += 64) {
        unsigned n = std::min(count - done, 64u);
        rte_fib_lookup_bulk(copy.v4, const_cast<std::uint32_t*>(addresses_host_order + done),
                            next_hops, static_cast<int>(n));
        for (unsigned i = 0; i < n; ++i) {
            peers[done + i] = static_cast<PeerId>(next_hops[i]);
        }
    }
}

void AllowedIps::lookup_v6(const std::uint8_t (*addresses)[16], PeerId* peers,
                           unsigned count) const {
    const Copy& copy = copies_[active_.load(std::memory_order_acquire)];
    std::uint64_t next_hops[64];
    for (unsigned done = 0; done < count; done += 64) {
        unsigned n = std::min(count - done, 64u);
        rte_fib6_lookup_bulk(copy.v6, const_cast<std::uint8_t(*)[16]>(addresses + done), next_hops,
                             static_cast<int>(n));
        for (unsigned i = 0; i < n; ++i) {
            peers[done + i] = static_cast<PeerId>(next_hops[i]);
        }
    }
}

void AllowedIps::lookup_burst(const IpAddress* addresses, PeerId* peers, unsigned count) const {
    std::uint32_t v4[64];
    std::uint8_t v6[64][16];
    std::uint8_t v4_at[64], v6_at[64];
    PeerId found[64];
    for (unsigned done = 0; done < count; done += 64) {
        const unsigned n = std::min(count - done, 64u);
        unsigned v4_count = 0, v6_count = 0;
        for (unsigned i = 0; i < n; ++i) {
            const IpAddress& address = addresses[done + i];
            if (address.is_v6) {
                std::memcpy(v6[v6_count], address.bytes.data(), 16);
                v6_at[v6_count++] = static_cast<std::uint8_t>(i);
            } else {
                v4[v4_count] = address.v4_host_order();
                v4_at[v4_count++] = static_cast<std::uint8_t>(i);
            }
        }
        if (v4_count == n) {
            lookup_v4(v4, peers + done, n);  // all IPv4, the usual burst: no scattering back
            continue;
        }
        if (v4_count > 0) {
            lookup_v4(v4, found, v4_count);
            for (unsigned i = 0; i < v4_count; ++i) {
                peers[done + v4_at[i]] = found[i];
            }
        }
        if (v6_count > 0) {
            lookup_v6(v6, found, v6_count);
            for (unsigned i = 0; i < v6_count; ++i) {
                peers[done + v6_at[i]] = found[i];
            }
        }
    }
}

PeerId AllowedIps::lookup(const IpAddress& address) const {
    PeerId peer = no_peer;
    if (address.is_v6) {
        std::uint8_t bytes[1][16];
        std::memcpy(bytes[0], address.bytes.data(), 16);
        lookup_v6(bytes, &peer, 1);
    } else {
        std::uint32_t host = address.v4_host_order();
        lookup_v4(&host, &peer, 1);
    }
    return peer;
}

}  // namespace meshgate::dataplane
