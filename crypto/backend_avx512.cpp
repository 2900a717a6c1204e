// PLACEHOLDER written by the lead so the tree links while the AVX-512 backend is being
// written; the AVX-512 engineer replaces this whole file (it is never committed).
#include "crypto/batch_aead.hpp"

namespace meshgate::crypto::avx512 {
bool supported(const CpuFeatures&) { return false; }
void seal(AeadJob* jobs, unsigned count) { sodium::seal(jobs, count); }
JobMask open(AeadJob* jobs, unsigned count) { return sodium::open(jobs, count); }
}  // namespace meshgate::crypto::avx512
