// Reader for partclone's `torrent.info`, the description of a partition image
// that `partclone.<fs> -c -t -s DEV -O DIR` writes instead of an image file:
//
//   block_size: 4096                                      (decimal, once)
//   blocks_total: 262144                                  (decimal, once)
//   offset: 00000000000000000000000000000000              (32 hex digits)
//   length: 00000000000000000000000000100000              (32 hex digits)
//   sha1: 0123456789abcdef0123456789abcdef01234567        (40 hex digits)
//
// Each offset/length pair is one extent of used blocks (byte offset on the
// partition and byte count). The sha1 lines are the SHA-1s of the
// concatenated extents in 16 MiB pieces, written as each piece completes, so
// they are interleaved with the extents (even between an offset and its
// length). partclone writes the extents in ascending offset order.
//
// The input is treated as hostile: it may come from anywhere a user copies
// it from. Everything here is pure computation, thread-safe, and allocates
// no more than the limits allow.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ezio {

// One extent of the partition image.
struct PartcloneExtent {
    std::uint64_t offset = 0;  // byte offset on the partition
    std::uint64_t length = 0;  // byte count, > 0
    // The offset exactly as it appears in torrent.info (e.g. 32 hex digits).
    // Torrent file names are built from this text, not from `offset`, so a
    // torrent we make is byte-identical to one built by other tools from the
    // same torrent.info.
    std::string offset_text;
};

using Sha1Digest = std::array<unsigned char, 20>;

struct PartcloneInfo {
    std::uint64_t block_size = 0;
    std::uint64_t blocks_total = 0;
    std::vector<PartcloneExtent> extents;  // in file order (ascending offset)
    std::vector<Sha1Digest> pieces;        // sha1 lines in file order

    // Sum of all extent lengths (the number of bytes the pieces cover).
    std::uint64_t total_length() const;
};

// Limits that keep a hostile torrent.info from exhausting memory or CPU. The
// defaults match LayoutLimits, so anything accepted here also fits a torrent
// ezio will load.
struct PartcloneInfoLimits {
    std::size_t max_extents = std::size_t{1} << 22;
    std::size_t max_pieces = std::size_t{1} << 23;
    std::size_t max_file_bytes = std::size_t{1} << 30;  // torrent.info size on disk
};

// Parses torrent.info text. Throws ezio::Error(Errc::InvalidTorrent) with a
// message naming the 1-based line number when a line is malformed (unknown
// key, bad decimal or hex, value out of range), an offset has no length, a
// length is zero, an extent overflows 64 bits, lies beyond block_size *
// blocks_total, or overlaps / precedes the previous extent, a header line is
// missing or repeated, or a limit is exceeded. Does not check the number of
// sha1 lines against the data length: that depends on the piece size, which
// the torrent maker checks.
PartcloneInfo parse_partclone_info(std::string_view text, const PartcloneInfoLimits& limits = {});

// Reads and parses a torrent.info file. Errc::InvalidArgs when it cannot be
// opened or read or is larger than limits.max_file_bytes; otherwise as
// parse_partclone_info, with the path in the message.
PartcloneInfo read_partclone_info(const std::string& path, const PartcloneInfoLimits& limits = {});

// True when `head` (the first bytes of a file; 64 are enough) starts like a
// torrent.info: a "block_size: <digits>" line. Used to tell torrent.info from
// an image file without relying on the file name.
bool looks_like_partclone_info(std::string_view head);

}  // namespace ezio
