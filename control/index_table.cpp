#include "control/index_table.hpp"

#include <stdexcept>

#include "crypto/random.hpp"

namespace meshgate::control {
namespace {

// At the load the layout is sized for (at most half the slots taken) a draw finds a free slot
// with probability one half or better; this many all failing means a table far fuller than
// that, where a walk to the next free slot beats drawing on.
constexpr unsigned random_draws = 32;

}  // namespace

IndexTable::IndexTable(IndexLayout layout) : layout_(layout) {
    if (!layout.valid()) {
        throw std::invalid_argument("index table: layout does not fit in 32 bits");
    }
    slots_.resize(layout.slot_count());
}

bool IndexTable::take(std::uint32_t index, PeerId peer) {
    Entry& entry = slots_[layout_.slot_of(index)];
    // Zero is never handed out: it reads as "no index" in logs, tests and the tables.
    if (index == 0 || entry.index != 0) {
        return false;
    }
    entry = {index, peer};
    ++size_;
    return true;
}

std::optional<std::uint32_t> IndexTable::allocate(PeerId peer, unsigned owner) {
    if (size_ == slots_.size()) {
        return std::nullopt;
    }
    // The random bits choose the slot as well as the high bits: indexes stay unpredictable.
    std::uint32_t random = 0;
    for (unsigned draw = 0; draw < random_draws; ++draw) {
        crypto::random_bytes(&random, sizeof(random));
        const std::uint32_t index = layout_.compose(random, owner, layout_.slot_of(random));
        if (take(index, peer)) {
            return index;
        }
    }
    // A free slot exists (the size says so): walk to it from the last draw's.
    const std::uint32_t start = layout_.slot_of(random);
    for (std::uint32_t step = 1; step < layout_.slot_count(); ++step) {
        const std::uint32_t slot = (start + step) & (layout_.slot_count() - 1);
        const std::uint32_t index = layout_.compose(random, owner, slot);
        if (take(index, peer)) {
            return index;
        }
    }
    return std::nullopt;  // only slot 0 was free, and this owner's index there would be zero
}

void IndexTable::release(std::uint32_t index) {
    Entry& entry = slots_[layout_.slot_of(index)];
    if (index != 0 && entry.index == index) {
        entry = {};
        --size_;
    }
}

const PeerId* IndexTable::find(std::uint32_t index) const {
    const Entry& entry = slots_[layout_.slot_of(index)];
    return index != 0 && entry.index == index ? &entry.peer : nullptr;
}

}  // namespace meshgate::control
