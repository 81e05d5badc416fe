// Re-reads an image from its target and checks every piece against the
// torrent's SHA-1 piece hashes. Used by the `verify` deploy option and by
// `ezioctl verify`. The target's cached pages of the image range are dropped
// first, so the check reads the device, not the page cache; pieces are
// hashed on several threads (the calling thread and helpers it joins), and
// pieces of up to 1 MiB sixteen at a time, side by side (sha1_lanes.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "layout.hpp"
#include "sha1_lanes.hpp"
#include "target.hpp"

namespace ezio {

struct VerifyResult {
    std::vector<int> bad_pieces;   // pieces whose hash did not match
    int io_error = 0;              // errno of the first failure, 0 if none
    const char* io_error_op = "";  // what failed: "reading", "dropping cached pages"
    std::uint64_t bytes_checked = 0;
};

// `progress(bytes_done)` is called after each piece, from any of the
// threads but never concurrently; `cancel` is polled. `threads`: 0 means one
// per core, at most 4. Pieces set in `skip` (checked already) are left out.
// bad_pieces is sorted. Throws ezio::Error(NotSupported) for a torrent
// without v1 piece hashes.
VerifyResult verify_image(const Target& target, const ImageTorrent& torrent,
                          const std::function<void(std::uint64_t)>& progress,
                          const std::atomic<bool>* cancel, int threads = 0,
                          const std::vector<bool>* skip = nullptr);

// Reads one piece from the target into `buf` (grown as needed) chunk by
// chunk and checks its SHA-1. Returns 0 and sets `good`, or an errno value.
int verify_piece(const Target& target, const ImageTorrent& torrent, int piece,
                 std::vector<char>& buf, bool& good);

// Pieces of at most this size are checked up to kSha1Lanes at a time, hashed
// side by side (verify_pieces()): each is read whole, so a thread holds
// kSha1Lanes buffers of this size.
inline constexpr int kSideBySidePiece = 1 << 20;

// How many pieces of `torrent` to check at once: kSha1Lanes (with
// verify_pieces()) where this CPU hashes side by side and the pieces are
// small enough, else 1 (verify_piece()).
int verify_group_size(const ImageTorrent& torrent);

// Reads pieces[0..n) (n <= kSha1Lanes, each at most kSideBySidePiece bytes)
// whole into `bufs` (grown as needed) and checks their SHA-1s side by side.
// Returns 0 and sets good[i], or an errno value.
int verify_pieces(const Target& target, const ImageTorrent& torrent, const int* pieces, int n,
                  std::vector<std::vector<char>>& bufs, bool* good);

}  // namespace ezio
