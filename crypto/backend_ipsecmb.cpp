// Intel ipsec-mb backend: the job API with the library's fastest manager for this CPU.
// ipsec-mb is strong on long packets (its single-buffer AVX-512 ChaCha20 runs 16 blocks of
// one packet in parallel, and its Poly1305 uses IFMA), so the engine sends it the large jobs.
//
// ipsec-mb does NOT check the tag when decrypting: it writes the tag it computed. We compare
// that against the received tag ourselves, in constant time, and wipe the plaintext of any
// job that fails.
#include <intel-ipsec-mb.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "crypto/batch_aead.hpp"
#include "crypto/secure.hpp"

namespace meshgate::crypto {

struct IpsecMb::Manager {
    IMB_MGR* manager = nullptr;
    // One IV and one computed-tag slot per job of a burst. Hot: touched once per packet.
    alignas(64) std::uint8_t iv[max_batch_jobs][16];
    alignas(64) std::uint8_t computed_tag[max_batch_jobs][aead_tag_size];
};

namespace {

constexpr std::uint64_t chacha_iv_size = 12;

void fill_nonce(std::uint8_t* iv, std::uint64_t counter) {
    std::memset(iv, 0, 4);
    for (int i = 0; i < 8; ++i) {
        iv[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
    }
}

void describe_job(IMB_JOB* job, const AeadJob& work, const std::uint8_t* iv, std::uint8_t* tag_out,
                  bool decrypt, unsigned index) {
    static const std::uint8_t no_aad[1] = {0};
    job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
    job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
    job->cipher_direction = decrypt ? IMB_DIR_DECRYPT : IMB_DIR_ENCRYPT;
    job->chain_order = decrypt ? IMB_ORDER_HASH_CIPHER : IMB_ORDER_CIPHER_HASH;
    job->enc_keys = work.key;
    job->dec_keys = work.key;
    job->key_len_in_bytes = aead_key_size;
    job->src = work.input;
    job->dst = work.output;
    job->cipher_start_src_offset_in_bytes = 0;
    job->msg_len_to_cipher_in_bytes = work.length;
    job->hash_start_src_offset_in_bytes = 0;
    job->msg_len_to_hash_in_bytes = work.length;
    job->iv = iv;
    job->iv_len_in_bytes = chacha_iv_size;
    job->u.CHACHA20_POLY1305.aad = no_aad;
    job->u.CHACHA20_POLY1305.aad_len_in_bytes = 0;
    job->auth_tag_output = tag_out;
    job->auth_tag_output_len_in_bytes = aead_tag_size;
    job->user_data = reinterpret_cast<void*>(static_cast<std::uintptr_t>(index));
}

}  // namespace

bool IpsecMb::supported(const CpuFeatures& cpu) {
    return cpu.has_avx512_core();
}

IpsecMb::IpsecMb(const CpuFeatures& cpu) : manager_(std::make_unique<Manager>()) {
    (void)cpu;
    manager_->manager = alloc_mb_mgr(0);
    if (manager_->manager == nullptr) {
        std::fprintf(stderr, "meshgate: ipsec-mb: alloc_mb_mgr failed\n");
        std::abort();
    }
    init_mb_mgr_avx512(manager_->manager);
}

IpsecMb::~IpsecMb() {
    if (manager_ && manager_->manager != nullptr) {
        free_mb_mgr(manager_->manager);
    }
}

void IpsecMb::seal(AeadJob* jobs, unsigned count) {
    assert(count <= max_batch_jobs);
    IMB_MGR* mgr = manager_->manager;
    for (unsigned i = 0; i < count; ++i) {
        fill_nonce(manager_->iv[i], jobs[i].counter);
        IMB_JOB* job = IMB_GET_NEXT_JOB(mgr);
        describe_job(job, jobs[i], manager_->iv[i], jobs[i].tag, false, i);
        IMB_SUBMIT_JOB(mgr);
    }
    while (IMB_FLUSH_JOB(mgr) != nullptr) {
    }
}

JobMask IpsecMb::open(AeadJob* jobs, unsigned count) {
    assert(count <= max_batch_jobs);
    IMB_MGR* mgr = manager_->manager;
    JobMask completed = 0;
    // A job that ipsec-mb rejects (status other than completed) counts as not authentic.
    auto collect = [&completed](IMB_JOB* done) {
        if (done != nullptr && done->status == IMB_STATUS_COMPLETED) {
            completed |= JobMask{1} << reinterpret_cast<std::uintptr_t>(done->user_data);
        }
    };
    for (unsigned i = 0; i < count; ++i) {
        fill_nonce(manager_->iv[i], jobs[i].counter);
        IMB_JOB* job = IMB_GET_NEXT_JOB(mgr);
        describe_job(job, jobs[i], manager_->iv[i], manager_->computed_tag[i], true, i);
        collect(IMB_SUBMIT_JOB(mgr));
    }
    for (IMB_JOB* done = IMB_FLUSH_JOB(mgr); done != nullptr; done = IMB_FLUSH_JOB(mgr)) {
        collect(done);
    }

    JobMask authentic = 0;
    for (unsigned i = 0; i < count; ++i) {
        bool ok = ((completed >> i) & 1) != 0 && equal_tag(manager_->computed_tag[i], jobs[i].tag);
        if (ok) {
            authentic |= JobMask{1} << i;
        } else {
            wipe(jobs[i].output, jobs[i].length);
        }
    }
    return authentic;
}

}  // namespace meshgate::crypto
