// libFuzzer target: ezio::parse_partclone_info(), the reader of partclone's
// torrent.info that `ezioctl make-torrent` trusts to build a torrent.
//
// Contract under test: any text either parses or throws ezio::Error
// (InvalidTorrent), nothing else. What parses honours the header's promises:
// extents in ascending order, non-empty, not overlapping, inside
// block_size * blocks_total, with offset_text naming the offset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "error.hpp"
#include "layout.hpp"
#include "partclone_info.hpp"

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)ezio::looks_like_partclone_info(text.substr(0, 64));
    ezio::PartcloneInfoLimits limits;
    limits.max_extents = 1 << 16;
    limits.max_pieces = 1 << 16;
    try {
        const ezio::PartcloneInfo info = ezio::parse_partclone_info(text, limits);
        check(info.extents.size() <= limits.max_extents);
        check(info.pieces.size() <= limits.max_pieces);
        std::uint64_t end = 0;
        std::uint64_t total = 0;
        for (const auto& e : info.extents) {
            check(e.length > 0);
            check(e.offset >= end);
            check(e.offset + e.length > e.offset);  // no wrap-around
            check(ezio::parse_hex_offset(e.offset_text) == e.offset);
            end = e.offset + e.length;
            total += e.length;
        }
        check(total == info.total_length());
        // block_size * blocks_total may not fit 64 bits; divide instead.
        if (info.block_size > 0 && !info.extents.empty())
            check((end - 1) / info.block_size < info.blocks_total);
    } catch (const ezio::Error& e) {
        check(e.code() == ezio::Errc::InvalidTorrent);
    }
    return 0;
}
