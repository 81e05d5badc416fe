// Re-reads an image from its target and checks every piece against the
// torrent's SHA-1 piece hashes. Used by the `verify` deploy option and by
// `ezioctl verify`. The target's cached pages of the image range are dropped
// first, so the check reads the device, not the page cache; pieces are
// hashed on several threads (the calling thread and helpers it joins).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "layout.hpp"
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

}  // namespace ezio
