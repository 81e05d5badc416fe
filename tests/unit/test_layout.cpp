#include <gtest/gtest.h>

#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/file_storage.hpp>

#include "error.hpp"
#include "layout.hpp"

namespace {

using ezio::Errc;
using ezio::ImageLayout;

lt::file_storage files(std::initializer_list<std::pair<std::string, std::int64_t>> list) {
    lt::file_storage fs;
    for (const auto& [name, size] : list)
        fs.add_file(name, size);
    fs.set_piece_length(16384);
    fs.set_num_pieces(static_cast<int>((fs.total_size() + 16383) / 16384));
    return fs;
}

Errc error_of(const lt::file_storage& fs) {
    try {
        ImageLayout::from_files(fs);
    } catch (const ezio::Error& e) {
        return e.code();
    }
    return Errc::Failed;  // "no error" is reported as Failed by the tests below
}

TEST(ParseHexOffset, AcceptsAnyWidthThatFits64Bits) {
    EXPECT_EQ(ezio::parse_hex_offset("00000000000000000000000000020000"), 0x20000u);
    EXPECT_EQ(ezio::parse_hex_offset("0"), 0u);
    EXPECT_EQ(ezio::parse_hex_offset("ffffffffffffffff"), ~std::uint64_t{0});
    EXPECT_EQ(ezio::parse_hex_offset("000000000000000000000000FFFFFFFFFFFFFFFF"),
              ~std::uint64_t{0});
    EXPECT_EQ(ezio::parse_hex_offset("AbC"), 0xabcu);
}

TEST(ParseHexOffset, RejectsGarbageAndOverflow) {
    EXPECT_FALSE(ezio::parse_hex_offset(""));
    EXPECT_FALSE(ezio::parse_hex_offset("0x10"));
    EXPECT_FALSE(ezio::parse_hex_offset("12g"));
    EXPECT_FALSE(ezio::parse_hex_offset("-1"));
    EXPECT_FALSE(ezio::parse_hex_offset("10000000000000000"));  // 2^64
    EXPECT_FALSE(ezio::parse_hex_offset("1 "));
}

TEST(ImageLayout, MapsExtentsToOffsets) {
    auto fs = files({{"sda1/00000000000000000000000000000000", 4096},
                     {"sda1/00000000000000000000000000020000", 8192},
                     {"sda1/00000000000000000000000000010000", 100}});
    auto layout = ImageLayout::from_files(fs);
    EXPECT_EQ(layout.device_offset(lt::file_index_t{0}), 0u);
    EXPECT_EQ(layout.device_offset(lt::file_index_t{1}), 0x20000u);
    EXPECT_EQ(layout.device_offset(lt::file_index_t{2}), 0x10000u);
    EXPECT_EQ(layout.end(), 0x20000u + 8192);
    EXPECT_EQ(layout.data_bytes(), 4096u + 8192 + 100);
    EXPECT_EQ(layout.extent_count(), 3u);
    EXPECT_NO_THROW(layout.check_fits(0x22000, "t"));
    try {
        layout.check_fits(0x21fff, "/dev/loop9");
        FAIL() << "a too-small target was accepted";
    } catch (const ezio::Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidTarget);
        EXPECT_NE(std::string(e.what()).find("/dev/loop9"), std::string::npos);
    }
}

TEST(ImageLayout, SingleFileTorrentIsARawImageAtZero) {
    lt::file_storage fs;
    fs.add_file("disk.img", 1 << 20);
    fs.set_piece_length(16384);
    fs.set_num_pieces(64);
    auto layout = ImageLayout::from_files(fs);
    EXPECT_EQ(layout.device_offset(lt::file_index_t{0}), 0u);
    EXPECT_EQ(layout.end(), 1u << 20);
}

TEST(ImageLayout, PadFilesAreNeverMapped) {
    lt::file_storage fs;
    fs.add_file("sda1/0000", 1000);
    fs.add_file("sda1/.pad/15384", 15384, lt::file_storage::flag_pad_file);
    fs.add_file("sda1/8000", 16384);
    fs.set_piece_length(16384);
    fs.set_num_pieces(2);
    auto layout = ImageLayout::from_files(fs);
    EXPECT_FALSE(layout.device_offset(lt::file_index_t{1}));
    EXPECT_EQ(layout.device_offset(lt::file_index_t{2}), 0x8000u);
    EXPECT_EQ(layout.data_bytes(), 1000u + 16384);
}

TEST(ImageLayout, RejectsNonHexNameAndNamesTheFile) {
    auto fs = files({{"sda1/0000", 10}, {"sda1/etc-passwd", 10}});
    try {
        ImageLayout::from_files(fs);
        FAIL() << "non-hex name accepted";
    } catch (const ezio::Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidTorrent);
        EXPECT_NE(std::string(e.what()).find("sda1/etc-passwd"), std::string::npos) << e.what();
    }
}

TEST(ImageLayout, RejectsOverlaps) {
    EXPECT_EQ(error_of(files({{"sda1/0000", 0x1001}, {"sda1/1000", 10}})), Errc::InvalidTorrent);
    EXPECT_EQ(error_of(files({{"sda1/1000", 10}, {"sda1/1000", 10}})), Errc::InvalidTorrent);
    // Adjacent extents are fine.
    EXPECT_NO_THROW(ImageLayout::from_files(files({{"sda1/0000", 0x1000}, {"sda1/1000", 10}})));
}

TEST(ImageLayout, RejectsOverflowingExtent) {
    EXPECT_EQ(error_of(files({{"sda1/ffffffffffffff00", 0x1000}})), Errc::InvalidTorrent);
    EXPECT_EQ(error_of(files({{"sda1/10000000000000000", 1}})), Errc::InvalidTorrent);
}

TEST(ImageLayout, RejectsTooManyFiles) {
    lt::file_storage fs;
    for (int i = 0; i < 20; ++i)
        fs.add_file("sda1/" + std::to_string(i * 100), 1);
    fs.set_piece_length(16384);
    fs.set_num_pieces(1);
    ezio::LayoutLimits limits;
    limits.max_files = 10;
    EXPECT_THROW(ImageLayout::from_files(fs, limits), ezio::Error);
}

std::vector<char> bencoded(const lt::file_storage& fs) {
    lt::create_torrent ct(const_cast<lt::file_storage&>(fs), fs.piece_length(),
                          lt::create_torrent::v1_only);
    for (lt::piece_index_t p{0}; p < lt::piece_index_t{fs.num_pieces()}; ++p)
        ct.set_hash(p, lt::sha1_hash("01234567890123456789"));
    std::vector<char> out;
    lt::bencode(std::back_inserter(out), ct.generate());
    return out;
}

TEST(LoadImageTorrent, LoadsAValidTorrent) {
    auto fs = files({{"sda1/00000000000000000000000000000000", 20000},
                     {"sda1/00000000000000000000000000100000", 30000}});
    auto bytes = bencoded(fs);
    auto t = ezio::load_image_torrent(bytes);
    EXPECT_EQ(t.info->num_files(), 2);
    EXPECT_EQ(t.layout.end(), 0x100000u + 30000);
}

TEST(LoadImageTorrent, RejectsGarbageEmptyAndTruncated) {
    const std::string garbage = "this is not a torrent";
    auto code = [](std::span<const char> b) {
        try {
            ezio::load_image_torrent(b);
        } catch (const ezio::Error& e) {
            return e.code();
        }
        return Errc::Failed;
    };
    EXPECT_EQ(code(garbage), Errc::InvalidTorrent);
    EXPECT_EQ(code({}), Errc::InvalidTorrent);
    auto bytes = bencoded(files({{"sda1/0", 20000}}));
    bytes.resize(bytes.size() / 2);
    EXPECT_EQ(code(bytes), Errc::InvalidTorrent);
    // Deeply nested lists must not blow the stack.
    std::string deep(100000, 'l');
    EXPECT_EQ(code(deep), Errc::InvalidTorrent);
}

TEST(LoadImageTorrent, RejectsNonHexFileInsideTorrent) {
    auto bytes = bencoded(files({{"sda1/0", 20000}, {"sda1/boot.ini", 10}}));
    try {
        ezio::load_image_torrent(bytes);
        FAIL();
    } catch (const ezio::Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidTorrent);
        EXPECT_NE(std::string(e.what()).find("boot.ini"), std::string::npos);
    }
}

}  // namespace
