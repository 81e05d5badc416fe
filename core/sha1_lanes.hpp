// ezio::Sha1 and sha1_update_lanes(): SHA-1 of many independent streams at
// once. A receiver checks every piece it gets, and on the 2-core machines
// ezio is measured on that check was a third of a 1-on-1 deployment's CPU
// time: SHA-NI hashes one stream at about 1.1-1.3 GB/s there. The SHA-1 of
// sixteen streams in the sixteen 32-bit lanes of AVX-512 registers (rotates
// and the three round functions are one instruction each) runs at 3.5-4x
// that per core, when there are pieces to hash side by side, as there are
// when small pieces arrive fast.
//
// A Sha1 is one stream (OpenSSL's SHA-1 underneath, SHA-NI where the CPU
// has it). sha1_update_lanes() feeds up to kSha1Lanes streams the same
// number of 64-byte blocks each, from a pointer per stream; on a CPU without
// AVX-512, or for fewer streams than pay for the wide path, it updates them
// one by one. Either way the digests are those of SHA-1.
#pragma once

#include <cstddef>
#include <cstdint>

#include <libtorrent/sha1_hash.hpp>

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA_CTX: the state is loaded and stored by the lanes
#endif
#include <openssl/sha.h>

namespace ezio {

inline constexpr int kSha1Lanes = 16;
inline constexpr std::size_t kSha1Block = 64;

class Sha1 {
  public:
    Sha1();
    void update(const void* data, std::size_t len);
    // The digest; the stream is done (update() after it starts nothing new).
    lt::sha1_hash final();
    // Bytes hashed so far.
    std::uint64_t bytes() const;
    // True when bytes() is a multiple of 64 (sha1_update_lanes() needs it).
    bool at_block_boundary() const { return ctx_.num == 0; }

  private:
    friend bool sha1_update_lanes(Sha1* const* streams, const char* const* data, int n,
                                  std::size_t blocks);
    SHA_CTX ctx_;
};

// Feeds streams[i] the `blocks` 64-byte blocks at data[i], for i < n
// (n <= kSha1Lanes). Returns true when they were hashed side by side, false
// when one by one (no wide path on this CPU, fewer than kSha1MinLanes
// streams, or a stream not at a block boundary): the digests are the same.
bool sha1_update_lanes(Sha1* const* streams, const char* const* data, int n, std::size_t blocks);

// True when sha1_update_lanes() has the wide path on this CPU; false means
// it is n single updates, and batching streams for it gains nothing.
bool sha1_lanes_fast();

// Fewer streams than this are hashed one by one even on the wide path: it
// costs the same for 1 stream as for 16.
inline constexpr int kSha1MinLanes = 5;

}  // namespace ezio
