#include "verify.hpp"

#include <algorithm>
#include <vector>

#include <libtorrent/hasher.hpp>

#include "error.hpp"
#include "raw_disk_io.hpp"

namespace ezio {

VerifyResult verify_image(const Target& target, const ImageTorrent& torrent,
                          const std::function<void(std::uint64_t)>& progress,
                          const std::atomic<bool>* cancel) {
    const lt::torrent_info& ti = *torrent.info;
    if (!ti.info_hashes().has_v1())
        throw Error(Errc::NotSupported,
                    "verification needs a torrent with v1 (SHA-1) piece hashes");
    const lt::file_storage& fs = ti.files();
    constexpr int kChunk = 1 << 20;
    std::vector<char> buf(kChunk);
    VerifyResult result;
    for (lt::piece_index_t p{0}; p < fs.end_piece(); ++p) {
        if (cancel && cancel->load())
            break;
        const int size = fs.piece_size(p);
        lt::hasher h;
        for (int pos = 0; pos < size;) {
            const int n = std::min(kChunk, size - pos);
            lt::storage_error se =
                piece_io(target, torrent.layout, fs, p, pos, buf.data(), n, false);
            if (se.ec) {
                result.io_error = se.ec.value();
                return result;
            }
            h.update(buf.data(), n);
            pos += n;
        }
        if (h.final() != ti.hash_for_piece(p))
            result.bad_pieces.push_back(static_cast<int>(p));
        result.bytes_checked += static_cast<std::uint64_t>(size);
        if (progress)
            progress(result.bytes_checked);
    }
    return result;
}

}  // namespace ezio
