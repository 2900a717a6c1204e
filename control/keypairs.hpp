// Transport keypairs and their rotation (whitepaper §5.4.7, the kernel's rules).
//
// A peer holds up to three: `current` (send and receive), `previous` (receive only, so packets
// in flight across a rekey still decrypt) and `next` (a responder's newest keypair, which may
// not send until the initiator has proven it has it by sending data with it).
//
// Control thread only. Keys wipe themselves on destruction (retirement).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "control/protocol_config.hpp"
#include "control/replay_window.hpp"
#include "crypto/keys.hpp"

namespace meshgate::control {

using Timestamp = Duration;

struct Keypair {
    crypto::SymmetricKey sending;
    crypto::SymmetricKey receiving;
    std::uint32_t local_index = 0;
    std::uint32_t remote_index = 0;
    Timestamp birth{};
    bool initiator = false;
    std::uint64_t sending_counter = 0;
    ReplayWindow replay;
};

class Keypairs {
  public:
    // Installs a fresh keypair by the rotation rules. Returns the keypairs it pushed out, so
    // the caller can release their indexes and tell the data plane.
    std::vector<std::unique_ptr<Keypair>> add(std::unique_ptr<Keypair> keypair);

    // A packet authenticated with `keypair`: when it is `next`, the responder's handshake is
    // confirmed and it becomes `current`. Returns the keypair pushed out, if any.
    std::unique_ptr<Keypair> received_with(const Keypair* keypair, bool& promoted);

    // Removes everything (wipe after 3 x REJECT_AFTER_TIME, peer removal).
    std::vector<std::unique_ptr<Keypair>> clear();

    Keypair* current() const { return current_.get(); }
    Keypair* previous() const { return previous_.get(); }
    Keypair* next() const { return next_.get(); }
    Keypair* find(std::uint32_t local_index) const;

  private:
    std::unique_ptr<Keypair> previous_;
    std::unique_ptr<Keypair> current_;
    std::unique_ptr<Keypair> next_;
};

}  // namespace meshgate::control
