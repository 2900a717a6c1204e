#include "control/keypairs.hpp"

namespace meshgate::control {

std::vector<std::unique_ptr<Keypair>> Keypairs::add(std::unique_ptr<Keypair> keypair) {
    std::vector<std::unique_ptr<Keypair>> retired;
    auto retire = [&retired](std::unique_ptr<Keypair>& slot) {
        if (slot) {
            retired.push_back(std::move(slot));
        }
    };
    if (keypair->initiator) {
        // The initiator knows the responder has this keypair (the response proved it), so it
        // sends with it at once. A pending `next` was never confirmed: it becomes previous so
        // packets the peer sends with it still decrypt; otherwise current steps back.
        if (next_) {
            retire(previous_);
            previous_ = std::move(next_);
            retire(current_);
        } else {
            retire(previous_);
            previous_ = std::move(current_);
        }
        current_ = std::move(keypair);
    } else {
        // The responder waits for the initiator's first data packet before sending with it.
        retire(next_);
        next_ = std::move(keypair);
        retire(previous_);
    }
    return retired;
}

std::unique_ptr<Keypair> Keypairs::received_with(const Keypair* keypair, bool& promoted) {
    promoted = false;
    if (keypair == nullptr || keypair != next_.get()) {
        return nullptr;
    }
    std::unique_ptr<Keypair> pushed_out = std::move(previous_);
    previous_ = std::move(current_);
    current_ = std::move(next_);
    promoted = true;
    return pushed_out;
}

std::vector<std::unique_ptr<Keypair>> Keypairs::clear() {
    std::vector<std::unique_ptr<Keypair>> retired;
    for (auto* slot : {&previous_, &current_, &next_}) {
        if (*slot) {
            retired.push_back(std::move(*slot));
        }
    }
    return retired;
}

Keypair* Keypairs::find(std::uint32_t local_index) const {
    for (Keypair* keypair : {current_.get(), previous_.get(), next_.get()}) {
        if (keypair != nullptr && keypair->local_index == local_index) {
            return keypair;
        }
    }
    return nullptr;
}

}  // namespace meshgate::control
