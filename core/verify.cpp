#include "verify.hpp"

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#include <libtorrent/hasher.hpp>

#include "error.hpp"
#include "raw_disk_io.hpp"

namespace ezio {

namespace {

// Reads in chunks of this size; one buffer per thread.
constexpr int kChunk = 1 << 20;
// Hashing threads: SHA-1 runs at ~2 GB/s per core, so a few saturate any disk.
constexpr unsigned kMaxThreads = 4;

}  // namespace

int verify_piece(const Target& target, const ImageTorrent& torrent, int piece,
                 std::vector<char>& buf, bool& good) {
    const lt::torrent_info& ti = *torrent.info;
    const lt::file_storage& fs = ti.files();
    const lt::piece_index_t p{piece};
    const int size = fs.piece_size(p);
    buf.resize(kChunk);
    lt::hasher h;
    for (int pos = 0; pos < size;) {
        const int n = std::min(kChunk, size - pos);
        lt::storage_error se = piece_io(target, torrent.layout, fs, p, pos, buf.data(), n, false);
        if (se.ec)
            return se.ec.value();
        h.update(buf.data(), n);
        pos += n;
    }
    good = h.final() == ti.hash_for_piece(p);
    return 0;
}

VerifyResult verify_image(const Target& target, const ImageTorrent& torrent,
                          const std::function<void(std::uint64_t)>& progress,
                          const std::atomic<bool>* cancel, int threads,
                          const std::vector<bool>* skip) {
    const lt::torrent_info& ti = *torrent.info;
    if (!ti.info_hashes().has_v1())
        throw Error(Errc::NotSupported,
                    "verification needs a torrent with v1 (SHA-1) piece hashes");
    const lt::file_storage& fs = ti.files();
    VerifyResult result;
    // Check the medium, not what we wrote into memory: drop the cached pages
    // of the image's range first (they are clean after the job's flush).
    if (const int err = target.drop_cache(0, torrent.layout.end())) {
        result.io_error = err;
        result.io_error_op = "dropping cached pages";
        return result;
    }

    if (threads <= 0)
        threads =
            static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads));
    threads = std::min(threads, std::max(1, ti.num_pieces()));

    // Pieces are handed out in order from a shared counter, so the reads stay
    // close together (near-sequential for the device) whatever the speed of
    // each thread.
    std::mutex mutex;  // guards next, result, and calls of progress
    int next = 0;
    auto work = [&] {
        std::vector<char> buf;
        for (;;) {
            int p;
            {
                std::lock_guard lock(mutex);
                while (skip && next < ti.num_pieces() &&
                       static_cast<std::size_t>(next) < skip->size() &&
                       (*skip)[static_cast<std::size_t>(next)])
                    ++next;
                if (result.io_error || next >= ti.num_pieces() || (cancel && cancel->load()))
                    return;
                p = next++;
            }
            bool good = false;
            const int err = verify_piece(target, torrent, p, buf, good);
            std::lock_guard lock(mutex);
            if (err) {
                if (!result.io_error) {
                    result.io_error = err;
                    result.io_error_op = "reading";
                }
                return;
            }
            if (!good)
                result.bad_pieces.push_back(p);
            const auto size = static_cast<std::uint64_t>(fs.piece_size(lt::piece_index_t{p}));
            result.bytes_checked += size;
            if (progress)
                progress(result.bytes_checked);
        }
    };
    std::vector<std::thread> pool;
    try {
        for (int i = 1; i < threads; ++i)
            pool.emplace_back(work);
    } catch (const std::system_error&) {
        // No more threads: verify with those we have.
    }
    work();
    for (auto& t : pool)
        t.join();
    std::sort(result.bad_pieces.begin(), result.bad_pieces.end());
    return result;
}

}  // namespace ezio
