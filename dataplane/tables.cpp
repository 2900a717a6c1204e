#include "dataplane/tables.hpp"

#include <rte_malloc.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "crypto/secure.hpp"

namespace meshgate::dataplane {

Keypair::~Keypair() {
    crypto::wipe(receive_key.data(), receive_key.size());
    crypto::wipe(send_key.data(), send_key.size());
}

void PeerSlot::write_endpoint(const EndpointRecord& record, const OuterTemplate& headers) {
    rte_seqlock_write_lock(&endpoint_lock);
    endpoint = record;
    outer = headers;
    rte_seqlock_write_unlock(&endpoint_lock);
}

void record_host_addresses(PeerSlot* peers, const AllowedIps& table,
                           const std::vector<AllowedIpChange>& routes) {
    for (const AllowedIpChange& change : routes) {
        const Prefix& prefix = change.prefix;
        if (change.peer == no_peer || prefix.address.is_v6 || prefix.length != 32 ||
            table.lookup(prefix.address) != change.peer) {
            continue;
        }
        std::atomic<std::uint32_t>& recorded = peers[change.peer].host_ipv4;
        if (recorded.load(std::memory_order_relaxed) == 0) {
            recorded.store(prefix.address.v4_network_order(), std::memory_order_relaxed);
        }
    }
}

SessionTable::SessionTable(const char* name, control::IndexLayout layout, rte_rcu_qsbr* rcu)
    : layout_(layout), slots_(layout.slot_decoder()), rcu_(rcu) {
    if (!layout.valid()) {
        throw std::runtime_error(std::string("session table ") + name +
                                 ": index layout does not fit in 32 bits");
    }
    void* memory = rte_zmalloc(name, sizeof(Entry) * layout.slot_count(), RTE_CACHE_LINE_SIZE);
    if (memory == nullptr) {
        throw std::runtime_error(std::string("session table ") + name + ": out of memory");
    }
    entries_ = static_cast<Entry*>(memory);
    std::uninitialized_default_construct_n(entries_, layout.slot_count());
}

SessionTable::~SessionTable() {
    for (std::uint32_t slot = 0; slot < layout_.slot_count(); ++slot) {
        delete entries_[slot].keypair.load(std::memory_order_relaxed);
    }
    std::destroy_n(entries_, layout_.slot_count());
    rte_free(entries_);
}

bool SessionTable::publish(std::unique_ptr<Keypair> keypair) {
    const std::uint32_t index = keypair->local_index;
    if (index == 0 || slot_taken(index)) {
        return false;
    }
    Entry& entry = entry_of(index);
    entry.index.store(index, std::memory_order_relaxed);
    entry.keypair.store(keypair.release(), std::memory_order_release);
    ++size_;
    return true;
}

void SessionTable::retire(std::uint32_t local_index) {
    Entry& entry = entry_of(local_index);
    Keypair* keypair = entry.keypair.load(std::memory_order_relaxed);
    if (keypair == nullptr || entry.index.load(std::memory_order_relaxed) != local_index) {
        return;
    }
    entry.keypair.store(nullptr, std::memory_order_release);
    if (rcu_ != nullptr) {
        rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    }
    // No reader holds the keypair now, and none can find the index: the slot is free.
    entry.index.store(0, std::memory_order_relaxed);
    --size_;
    delete keypair;  // wipes the keys
}

bool SessionTable::slot_taken(std::uint32_t index) const {
    return entry_of(index).keypair.load(std::memory_order_relaxed) != nullptr;
}

void SessionTable::lookup(const std::uint32_t* indexes, Keypair** keypairs, unsigned count) const {
    // Every entry's line is requested before the first is read: with many peers each is a
    // cache miss, and a burst's misses then overlap instead of queueing one behind another.
    for (unsigned i = 0; i < count; ++i) {
        prefetch(indexes[i]);
    }
    for (unsigned i = 0; i < count; ++i) {
        keypairs[i] = find(indexes[i]);
    }
}

}  // namespace meshgate::dataplane
