// libFuzzer target: ezio::load_image_torrent(), the first code that sees a
// .torrent from the bus (eziod's Deploy/Seed) or from a file (ezioctl).
//
// Contract under test: any byte string either loads or throws ezio::Error
// (InvalidTorrent); never another exception, a crash, a leak or undefined
// behaviour. A layout that loads must be self-consistent: every non-pad file
// of some length maps to an offset whose extent ends within end(), those
// files are the extents, and their lengths add up to data_bytes().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "error.hpp"
#include "layout.hpp"

namespace {

// Smaller than the daemon's limits so one input cannot spend the whole
// run's memory; the logic under test is the same.
ezio::LayoutLimits limits() {
    ezio::LayoutLimits l;
    l.max_files = 1 << 16;
    l.max_torrent_bytes = 1 << 20;
    l.max_pieces = 1 << 16;
    return l;
}

void check(bool ok) {
    if (!ok)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
    try {
        const ezio::ImageTorrent t = ezio::load_image_torrent(bytes, limits());
        const lt::file_storage& fs = t.info->files();
        std::uint64_t sum = 0;
        std::size_t extents = 0;
        for (const lt::file_index_t i : fs.file_range()) {
            const auto offset = t.layout.device_offset(i);
            const auto length = static_cast<std::uint64_t>(fs.file_size(i));
            if (!offset || length == 0)
                continue;  // pad files and empty files are never written
            check(*offset <= t.layout.end() && length <= t.layout.end() - *offset);
            sum += length;
            ++extents;
        }
        check(sum == t.layout.data_bytes());
        check(extents == t.layout.extent_count());
        // A target exactly end() bytes long fits; one byte less does not
        // (unless the image is empty).
        t.layout.check_fits(t.layout.end(), "fuzz");
        if (t.layout.end() > 0 && t.layout.data_bytes() > 0) {
            try {
                t.layout.check_fits(t.layout.end() - 1, "fuzz");
                check(false);
            } catch (const ezio::Error& e) {
                check(e.code() == ezio::Errc::InvalidTarget);
            }
        }
    } catch (const ezio::Error& e) {
        check(e.code() == ezio::Errc::InvalidTorrent);
    }
    return 0;
}
