// The eight-lane X25519 ladder behind dh_batch() (x25519.hpp). Only for CPUs with AVX-512 F,
// BW, VL and IFMA (dh_batch checks); compiled with AVX-512 flags.
#pragma once

#include <cstdint>

namespace meshgate::crypto::x25519_ifma {

inline constexpr unsigned lanes = 8;

// out[l] = X25519(scalars[l], points[l]) for l < count <= 8, as raw 32-byte strings (RFC 7748
// §5: the scalar is clamped, the top bit of the u-coordinate ignored, a u >= p reduced).
// A null points[l] means the base point 9. The result may be all zeros: the caller checks.
// Constant time in the scalars and points; idle lanes (l >= count) cost the same as busy ones.
void scalarmult_x8(std::uint8_t* const out[lanes], const std::uint8_t* const scalars[lanes],
                   const std::uint8_t* const points[lanes], unsigned count);

}  // namespace meshgate::crypto::x25519_ifma
