// Receiver indexes (whitepaper §5.4.2): random 32-bit values naming our side of a handshake or
// keypair, unique at any moment. The low `owner_bits` name the worker that owns the peer, so a
// data-plane worker decides "mine or hand off" with one mask (DESIGN.md).
//
// Control thread only.
#pragma once

#include <cstdint>
#include <unordered_map>

namespace meshgate::control {

using PeerId = std::uint32_t;

class IndexTable {
  public:
    explicit IndexTable(unsigned owner_bits) : owner_bits_(owner_bits) {}

    // A fresh random index for `peer`, owned by worker `owner`.
    std::uint32_t allocate(PeerId peer, unsigned owner);
    void release(std::uint32_t index);
    // The peer an index belongs to, or nullptr.
    const PeerId* find(std::uint32_t index) const;
    std::size_t size() const { return entries_.size(); }

  private:
    unsigned owner_bits_;
    std::unordered_map<std::uint32_t, PeerId> entries_;
};

}  // namespace meshgate::control
