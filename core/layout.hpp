// The ezio image layout: a torrent describes a partition image as a set of
// extents. Each non-pad file of a multi-file torrent is named by the byte
// offset of its extent on the partition, in hex ("sda1/000...020000"); its
// length is the extent length. A single-file torrent is a whole raw image
// that starts at offset 0.
//
// ImageLayout validates that description before anything is written and
// maps torrent files to partition offsets. It is immutable after
// construction and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <libtorrent/file_storage.hpp>
#include <libtorrent/torrent_info.hpp>

namespace ezio {

// Parses a hex extent name ("00000000000000000000000000020000", any width,
// leading zeros allowed, no prefix). nullopt unless the value fits 64 bits.
std::optional<std::uint64_t> parse_hex_offset(std::string_view name);

// Limits that keep a hostile torrent from exhausting memory or CPU.
struct LayoutLimits {
    std::int64_t max_files = 1 << 22;            // 4 Mi extents
    std::int64_t max_torrent_bytes = 256 << 20;  // .torrent file size
    int max_pieces = 1 << 23;
};

class ImageLayout {
  public:
    // Validates the file list. Throws ezio::Error(Errc::InvalidTorrent) naming
    // the offending file when a name is not a hex offset, two extents overlap,
    // an extent overflows 64 bits, or the file count exceeds the limit.
    static ImageLayout from_files(const lt::file_storage& files, const LayoutLimits& limits = {});

    // Partition byte offset where torrent file `index` starts; pad files
    // (BEP 47) are never written and have no offset.
    std::optional<std::uint64_t> device_offset(lt::file_index_t index) const {
        auto i = static_cast<std::size_t>(static_cast<int>(index));
        if (i >= offsets_.size() || offsets_[i] == kPad)
            return std::nullopt;
        return offsets_[i];
    }

    // One past the highest extent byte: the minimum target size.
    std::uint64_t end() const { return end_; }
    // Sum of all non-pad extent lengths.
    std::uint64_t data_bytes() const { return data_bytes_; }
    std::size_t extent_count() const { return extents_; }

    // Throws ezio::Error(Errc::InvalidTarget) when a target of `size` bytes
    // cannot hold every extent.
    void check_fits(std::uint64_t size, const std::string& target) const;

  private:
    static constexpr std::uint64_t kPad = ~std::uint64_t{0};
    std::vector<std::uint64_t> offsets_;  // by file index; kPad for pad files
    std::uint64_t end_ = 0;
    std::uint64_t data_bytes_ = 0;
    std::size_t extents_ = 0;
};

// A parsed torrent together with its validated layout.
struct ImageTorrent {
    std::shared_ptr<const lt::torrent_info> info;
    ImageLayout layout;
};

// The torrent's info-hash in hex: v1 (40 digits) if it has one, else v2 (64).
std::string info_hash_hex(const lt::torrent_info& ti);

// Decodes .torrent bytes with hard limits and validates the layout. Throws
// ezio::Error(Errc::InvalidTorrent) with a readable message.
ImageTorrent load_image_torrent(std::span<const char> bytes, const LayoutLimits& limits = {});
// Reads and loads a .torrent file; Errc::InvalidArgs when it cannot be read.
ImageTorrent load_image_torrent_file(const std::string& path, const LayoutLimits& limits = {});

}  // namespace ezio
