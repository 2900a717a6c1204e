// Receiver indexes (whitepaper §5.4.2): random 32-bit values naming our side of a handshake or
// keypair, unique at any moment. Their bits follow IndexLayout: the low bits name the worker
// that owns the peer, the next ones a slot in the workers' session table, which holds one
// index per slot; so no two live indexes here share a slot either.
//
// Control thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "control/index_layout.hpp"

namespace meshgate::control {

using PeerId = std::uint32_t;

class IndexTable {
  public:
    // Throws std::invalid_argument for a layout IndexLayout::valid() refuses (a caller's bug).
    explicit IndexTable(IndexLayout layout);

    // A fresh random index for `peer`, owned by worker `owner`, in a slot no live index holds.
    // Nullopt when every slot is taken: more live indexes than the layout was sized for.
    std::optional<std::uint32_t> allocate(PeerId peer, unsigned owner);
    // No-op unless `index` is live (a stale index must not free its slot's new holder).
    void release(std::uint32_t index);
    // The peer an index belongs to, or nullptr.
    const PeerId* find(std::uint32_t index) const;
    std::size_t size() const { return size_; }
    const IndexLayout& layout() const { return layout_; }

  private:
    struct Entry {
        std::uint32_t index = 0;  // 0: free (zero is never handed out)
        PeerId peer = 0;
    };

    bool take(std::uint32_t index, PeerId peer);

    IndexLayout layout_;
    std::vector<Entry> slots_;  // by IndexLayout::slot_of
    std::size_t size_ = 0;
};

}  // namespace meshgate::control
