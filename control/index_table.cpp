#include "control/index_table.hpp"

#include "crypto/x25519.hpp"

namespace meshgate::control {

std::uint32_t IndexTable::allocate(PeerId peer, unsigned owner) {
    const std::uint32_t owner_mask = (1u << owner_bits_) - 1;
    for (;;) {
        std::uint32_t index;
        crypto::random_bytes(&index, sizeof(index));
        index = (index & ~owner_mask) | (owner & owner_mask);
        // Zero is never handed out: it reads as "no index" in logs and tests.
        if (index != 0 && entries_.emplace(index, peer).second) {
            return index;
        }
    }
}

void IndexTable::release(std::uint32_t index) {
    entries_.erase(index);
}

const PeerId* IndexTable::find(std::uint32_t index) const {
    auto it = entries_.find(index);
    return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace meshgate::control
