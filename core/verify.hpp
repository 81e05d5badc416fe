// Re-reads an image from its target and checks every piece against the
// torrent's SHA-1 piece hashes. Used by the `verify` deploy option and by
// `ezioctl verify`. Runs on the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "layout.hpp"
#include "target.hpp"

namespace ezio {

struct VerifyResult {
    std::vector<int> bad_pieces;  // pieces whose hash did not match
    int io_error = 0;             // errno of the first read failure, 0 if none
    std::uint64_t bytes_checked = 0;
};

// `progress(bytes_done)` is called after each piece; `cancel` is polled.
// Throws ezio::Error(NotSupported) for a torrent without v1 piece hashes.
VerifyResult verify_image(const Target& target, const ImageTorrent& torrent,
                          const std::function<void(std::uint64_t)>& progress,
                          const std::atomic<bool>* cancel);

}  // namespace ezio
