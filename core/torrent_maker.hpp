// Making ezio torrents: the .torrent that describes a partition image as
// extents named by their partition offset (see layout.hpp).
//
// Three sources:
//  * partclone's torrent.info (partclone_info.hpp): no data is read; the
//    torrent is built from the extents and SHA-1 lines as they are, with
//    16 MiB pieces, v1 only, no pad files. The result is byte-identical to
//    what lt::create_torrent(fs, 16 MiB, v1_only) makes from the same file
//    list and hashes, so it matches torrents made by other tools from the
//    same torrent.info (same info-hash).
//  * an image file or a block device: the data is read once, sequentially,
//    and hashed on all cores. It becomes extents of whole chunks; with
//    skip_zero, all-zero chunks are left out (they need not be sent: the
//    deploy target is expected to read back zeros there, or not care).
//
// Output is deterministic: the same input and options give the same bytes
// (no creation date unless asked for), so the same info-hash.
//
// Threading: every function is synchronous and may be called from any
// thread; make_torrent_from_image() starts and joins its own hashing threads.
// The progress callback runs on the calling thread.
//
// Errors: ezio::Error with
//   InvalidArgs    bad options, unreadable or unsuitable source;
//   InvalidTorrent torrent.info malformed or inconsistent (e.g. the number of
//                  sha1 lines does not match the data length);
//   IoError        a read from the image failed part-way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "partclone_info.hpp"

namespace ezio {

// partclone's piece size, fixed in partclone.
inline constexpr int kPartclonePieceSize = 16 * 1024 * 1024;

// "ezio <version>", the default "created by".
std::string default_torrent_creator();

struct MakeTorrentOptions {
    // Torrent name: the directory the extents live in, by convention the
    // partition name ("sda1"). Required by the make_torrent_from_* functions;
    // make_torrent() derives one from the source when empty. No '/', not
    // "." or "..", at most 255 bytes.
    std::string name;
    // Announce URLs, each in its own tier, in this order.
    std::vector<std::string> trackers;
    std::string comment;  // empty: no comment
    // "created by"; empty: omitted. Outside the info dict, so it never
    // changes the info-hash.
    std::string creator = default_torrent_creator();
    // Seconds since the epoch; 0: no "creation date" (reproducible output).
    std::int64_t creation_date = 0;

    // Image sources: 0 means 4 MiB for images up to 4 GiB, 16 MiB above;
    // otherwise a power of two from 16 KiB to 128 MiB. torrent.info without
    // data_source: 0 or 16 MiB (partclone's SHA-1s are over 16 MiB pieces).
    // torrent.info with data_source: 0 means rehash_piece_size(); otherwise
    // a power of two from 16 KiB to 16 MiB.
    int piece_size = 0;
    // torrent.info only: the partition (block device or image file) that
    // partclone captured. Its used extents are read and hashed in pieces of
    // piece_size, and every 16 MiB piece is checked against torrent.info's
    // SHA-1 on the way, so the torrent describes exactly what partclone
    // captured (InvalidArgs if the data changed since). Same file list, other
    // piece size: smaller pieces let a swarm relay data sooner.
    std::string data_source;
    // Leave all-zero chunks out of the torrent (image sources only).
    bool skip_zero = false;
    // Extent granularity for skip_zero: a power of two from 4 KiB to the
    // piece size.
    std::uint64_t chunk_size = 1024 * 1024;
    // Hashing threads; 0: one per core.
    int threads = 0;
    // v1+v2 (BEP 52 hybrid) torrent instead of v1 only. Image sources only:
    // v2 needs SHA-256 of the data. Adds pad files after every extent.
    bool hybrid = false;

    // Called on the calling thread as the image is read (bytes read so far,
    // image size). Optional.
    std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

enum class TorrentSource { PartcloneInfo, ImageFile, BlockDevice };

struct MakeTorrentResult {
    std::vector<char> torrent;  // the bencoded .torrent
    TorrentSource source = TorrentSource::ImageFile;
    std::string name;          // torrent name used
    std::string info_hash;     // v1 info-hash, 40 hex digits
    std::string info_hash_v2;  // 64 hex digits for hybrid torrents, else empty
    int piece_size = 0;
    std::size_t piece_count = 0;
    std::size_t extent_count = 0;    // files, not counting pad files
    std::uint64_t total_bytes = 0;   // sum of extent lengths
    std::uint64_t source_bytes = 0;  // image/device size; partclone: block_size * blocks_total
};

// The automatic piece size when rehashing a torrent.info: at least about
// 1000 pieces (a swarm passes a piece on only once it is complete), from
// 256 KiB to 16 MiB, a power of two.
int rehash_piece_size(std::uint64_t total_bytes);

// Builds the torrent from parsed torrent.info; without options.data_source
// no data is read.
// Throws InvalidArgs for bad options (including skip_zero/hybrid, or a piece
// size other than 16 MiB without data_source), InvalidTorrent when the sha1
// line count is not ceil(total length / 16 MiB); with data_source also
// InvalidArgs when it cannot be opened, is too small or its data does not
// match a sha1 line, IoError when a read fails.
std::vector<char> make_torrent_from_partclone(const PartcloneInfo& info,
                                              const MakeTorrentOptions& options);
MakeTorrentResult make_torrent_result_from_partclone(const PartcloneInfo& info,
                                                     const MakeTorrentOptions& options);

// Reads `path` (a regular file, or a block device, opened read-only) and
// hashes it. Files are "NAME/<offset as 32 lowercase hex digits>", as
// partclone names them. Throws InvalidArgs when the path cannot be opened,
// is not a file or block device, is empty, or (skip_zero) holds only zeros;
// IoError when a read fails or the source shrinks while being read.
std::vector<char> make_torrent_from_image(const std::string& path,
                                          const MakeTorrentOptions& options);
MakeTorrentResult make_torrent_result_from_image(const std::string& path,
                                                 const MakeTorrentOptions& options);

// Detects the kind of `source` by content, not by name: a file starting
// like a torrent.info (looks_like_partclone_info), a directory holding
// torrent.info (partclone's -O DIR), a block device, or an image file, and
// makes the torrent. When options.name is empty it is derived: for
// torrent.info the name of its directory, for a device or image its file
// name without extension; "image" when that gives nothing usable.
MakeTorrentResult make_torrent(const std::string& source, const MakeTorrentOptions& options);

}  // namespace ezio
