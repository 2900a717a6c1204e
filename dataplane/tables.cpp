#include "dataplane/tables.hpp"

#include <rte_hash_crc.h>

#include <stdexcept>
#include <string>

#include "crypto/secure.hpp"

namespace meshgate::dataplane {

Keypair::~Keypair() {
    crypto::wipe(receive_key.data(), receive_key.size());
    crypto::wipe(send_key.data(), send_key.size());
}

void PeerSlot::write_endpoint(const EndpointRecord& record) {
    rte_seqlock_write_lock(&endpoint_lock);
    endpoint = record;
    rte_seqlock_write_unlock(&endpoint_lock);
}

SessionTable::SessionTable(const char* name, std::uint32_t capacity, rte_rcu_qsbr* rcu)
    : rcu_(rcu) {
    rte_hash_parameters parameters{};
    parameters.name = name;
    parameters.entries = capacity;
    parameters.key_len = sizeof(std::uint32_t);
    parameters.hash_func = rte_hash_crc;
    parameters.socket_id = SOCKET_ID_ANY;
    // Lock-free readers; the slot of a deleted key is freed by us after the RCU grace period.
    parameters.extra_flag =
        RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_NO_FREE_ON_DEL;
    hash_ = rte_hash_create(&parameters);
    if (hash_ == nullptr) {
        throw std::runtime_error(std::string("session table: cannot create hash ") + name);
    }
}

SessionTable::~SessionTable() {
    std::uint32_t iterator = 0;
    const void* key;
    void* data;
    while (rte_hash_iterate(hash_, &key, &data, &iterator) >= 0) {
        delete static_cast<Keypair*>(data);
    }
    rte_hash_free(hash_);
}

bool SessionTable::publish(std::unique_ptr<Keypair> keypair) {
    std::uint32_t index = keypair->local_index;
    if (rte_hash_lookup(hash_, &index) >= 0) {
        return false;
    }
    if (rte_hash_add_key_data(hash_, &index, keypair.get()) != 0) {
        return false;
    }
    keypair.release();
    return true;
}

void SessionTable::retire(std::uint32_t local_index) {
    void* data = nullptr;
    if (rte_hash_lookup_data(hash_, &local_index, &data) < 0) {
        return;
    }
    std::int32_t position = rte_hash_del_key(hash_, &local_index);
    if (rcu_ != nullptr) {
        rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    }
    rte_hash_free_key_with_position(hash_, position);
    delete static_cast<Keypair*>(data);
}

std::uint32_t SessionTable::size() const {
    return static_cast<std::uint32_t>(rte_hash_count(hash_));
}

void SessionTable::lookup(const std::uint32_t* indexes, Keypair** keypairs, unsigned count) const {
    const void* keys[RTE_HASH_LOOKUP_BULK_MAX];
    void* data[RTE_HASH_LOOKUP_BULK_MAX];
    for (unsigned done = 0; done < count; done += RTE_HASH_LOOKUP_BULK_MAX) {
        unsigned n = std::min<unsigned>(count - done, RTE_HASH_LOOKUP_BULK_MAX);
        for (unsigned i = 0; i < n; ++i) {
            keys[i] = &indexes[done + i];
        }
        std::uint64_t hits = 0;
        rte_hash_lookup_bulk_data(hash_, keys, n, &hits, data);
        for (unsigned i = 0; i < n; ++i) {
            keypairs[done + i] = (hits >> i) & 1 ? static_cast<Keypair*>(data[i]) : nullptr;
        }
    }
}

}  // namespace meshgate::dataplane
