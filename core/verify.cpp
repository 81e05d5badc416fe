#include "verify.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include <libtorrent/hasher.hpp>

#include "error.hpp"
#include "raw_disk_io.hpp"
#include "sha1_lanes.hpp"

namespace ezio {

namespace {

// Reads in chunks of this size; one buffer per thread.
constexpr int kChunk = 1 << 20;
// Hashing threads: SHA-1 runs at ~2 GB/s per core, so a few saturate any disk.
constexpr unsigned kMaxThreads = 4;

}  // namespace

int verify_group_size(const ImageTorrent& torrent) {
    return sha1_lanes_fast() && torrent.info->piece_length() <= kSideBySidePiece ? kSha1Lanes : 1;
}

int verify_pieces(const Target& target, const ImageTorrent& torrent, const int* group, int n,
                  std::vector<std::vector<char>>& bufs, bool* good) {
    if (n < 0 || n > kSha1Lanes)
        return EINVAL;
    bufs.resize(std::max(bufs.size(), static_cast<std::size_t>(n)));
    const lt::torrent_info& ti = *torrent.info;
    const lt::file_storage& fs = ti.files();
    Sha1 streams[kSha1Lanes];
    Sha1* lanes[kSha1Lanes];
    const char* data[kSha1Lanes];
    std::size_t common = SIZE_MAX;  // 64-byte blocks every piece of the group has
    for (int i = 0; i < n; ++i) {
        const lt::piece_index_t p{group[i]};
        const int size = fs.piece_size(p);
        auto& buf = bufs[static_cast<std::size_t>(i)];
        buf.resize(static_cast<std::size_t>(size));
        const lt::storage_error se =
            piece_io(target, torrent.layout, fs, p, 0, buf.data(), size, false);
        if (se.ec)
            return se.ec.value();
        lanes[i] = &streams[i];
        data[i] = buf.data();
        common = std::min(common, static_cast<std::size_t>(size) / kSha1Block);
    }
    sha1_update_lanes(lanes, data, n, common);
    for (int i = 0; i < n; ++i) {
        const auto size = static_cast<std::size_t>(fs.piece_size(lt::piece_index_t{group[i]}));
        streams[i].update(data[i] + common * kSha1Block, size - common * kSha1Block);
        good[i] = streams[i].final() == ti.hash_for_piece(lt::piece_index_t{group[i]});
    }
    return 0;
}

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
    // each thread: one at a time, or with the hashing lanes, groups of
    // consecutive pieces.
    const int group_size = verify_group_size(torrent);
    std::mutex mutex;  // guards next, result, and calls of progress
    int next = 0;
    auto work = [&] {
        std::vector<char> buf;
        std::vector<std::vector<char>> bufs(static_cast<std::size_t>(group_size));
        int group[kSha1Lanes];
        bool good[kSha1Lanes];
        for (;;) {
            int n = 0;
            {
                std::lock_guard lock(mutex);
                while (n < group_size) {
                    while (skip && next < ti.num_pieces() &&
                           static_cast<std::size_t>(next) < skip->size() &&
                           (*skip)[static_cast<std::size_t>(next)])
                        ++next;
                    if (result.io_error || next >= ti.num_pieces() || (cancel && cancel->load()))
                        break;
                    group[n++] = next++;
                }
                if (n == 0)
                    return;
            }
            const int err = group_size > 1 ? verify_pieces(target, torrent, group, n, bufs, good)
                                           : verify_piece(target, torrent, group[0], buf, good[0]);
            std::lock_guard lock(mutex);
            if (err) {
                if (!result.io_error) {
                    result.io_error = err;
                    result.io_error_op = "reading";
                }
                return;
            }
            for (int i = 0; i < n; ++i) {
                if (!good[i])
                    result.bad_pieces.push_back(group[i]);
                result.bytes_checked +=
                    static_cast<std::uint64_t>(fs.piece_size(lt::piece_index_t{group[i]}));
                if (progress)
                    progress(result.bytes_checked);
            }
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
