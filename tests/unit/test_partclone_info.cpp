// Parsing partclone's torrent.info: real samples and hostile text.
//
// The samples in tests/data/partclone/ were made by partclone 0.3.23 (Debian
// 12) from a 96 MiB ext4 image holding four 10 MiB random files:
//   partclone.extfs -c -t -s /dev/loopN -O DIR               (ext4-96m-z1m)
//   partclone.extfs -c -t -s /dev/loopN -O DIR -z 16777216   (ext4-96m-z16m)
// Both describe the same 54054912 data bytes (4 pieces of 16 MiB, the last
// short), cut into 1 MiB and 16 MiB extents respectively.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "error.hpp"
#include "partclone_info.hpp"

namespace {

using ezio::Errc;
using ezio::Error;

const std::string kDataDir = EZIO_TEST_DATA_DIR "/partclone";
const std::string kZero32 = "00000000000000000000000000000000";
const std::string kSha = "0123456789abcdef0123456789abcdef01234567";

std::string header() {
    return "block_size: 4096\nblocks_total: 256\n";
}  // 1 MiB partition

// Expects parse_partclone_info(text) to throw `code` with `needle` in the
// message.
void expect_error(const std::string& text, Errc code, const std::string& needle,
                  const ezio::PartcloneInfoLimits& limits = {}) {
    try {
        ezio::parse_partclone_info(text, limits);
        ADD_FAILURE() << "no error for:\n" << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "message \"" << e.what() << "\" lacks \"" << needle << "\"";
    }
}

TEST(PartcloneInfo, ParsesRealSample) {
    const auto info = ezio::read_partclone_info(kDataDir + "/ext4-96m-z1m.torrent.info");
    EXPECT_EQ(info.block_size, 1024u);
    EXPECT_EQ(info.blocks_total, 98304u);
    ASSERT_EQ(info.extents.size(), 57u);
    EXPECT_EQ(info.extents[0].offset, 0u);
    EXPECT_EQ(info.extents[0].length, 0x100000u);
    EXPECT_EQ(info.extents[0].offset_text, kZero32);
    EXPECT_EQ(info.extents[7].offset, 0x800400u);
    EXPECT_EQ(info.extents[7].offset_text, "00000000000000000000000000800400");
    EXPECT_EQ(info.extents.back().offset, 0x4800400u);
    EXPECT_EQ(info.extents.back().length, 0x40800u);
    EXPECT_EQ(info.total_length(), 54054912u);
    ASSERT_EQ(info.pieces.size(), 4u);
    EXPECT_EQ(info.pieces[0][0], 0xef);
    EXPECT_EQ(info.pieces[0][19], 0xc1);
    EXPECT_EQ(info.pieces[3][0], 0xb9);
}

TEST(PartcloneInfo, BothSamplesDescribeTheSameData) {
    const auto a = ezio::read_partclone_info(kDataDir + "/ext4-96m-z1m.torrent.info");
    const auto b = ezio::read_partclone_info(kDataDir + "/ext4-96m-z16m.torrent.info");
    EXPECT_EQ(b.extents.size(), 8u);
    EXPECT_EQ(a.total_length(), b.total_length());
    EXPECT_EQ(a.pieces, b.pieces);  // SHA-1s over the concatenated extents
}

TEST(PartcloneInfo, AcceptsInterleavingBlankLinesAndCrlf) {
    // partclone writes a sha1 line as soon as a piece completes, which can be
    // between an extent's offset and length lines.
    const std::string text =
        "block_size: 4096\r\nblocks_total: 256\r\n\r\noffset: 0\r\nsha1: " + kSha +
        "\r\nlength: 1000\r\n  offset:\t2000 \r\nlength: 0A00\n";
    const auto info = ezio::parse_partclone_info(text);
    ASSERT_EQ(info.extents.size(), 2u);
    EXPECT_EQ(info.extents[0].offset_text, "0");
    EXPECT_EQ(info.extents[0].length, 0x1000u);
    EXPECT_EQ(info.extents[1].offset, 0x2000u);
    EXPECT_EQ(info.extents[1].offset_text, "2000");
    EXPECT_EQ(info.extents[1].length, 0xa00u);
    ASSERT_EQ(info.pieces.size(), 1u);
    EXPECT_EQ(info.pieces[0][0], 0x01);
    EXPECT_EQ(info.pieces[0][1], 0x23);
}

TEST(PartcloneInfo, AdjacentExtentsAreFine) {
    const auto info = ezio::parse_partclone_info(header() +
                                                 "offset: 0\nlength: 1000\noffset: 1000\nlength: "
                                                 "ff000\n");
    EXPECT_EQ(info.total_length(), 0x100000u);  // exactly the partition
}

TEST(PartcloneInfo, RejectsMalformedLines) {
    expect_error("", Errc::InvalidTorrent, "no block_size");
    expect_error("block_size: 4096\n", Errc::InvalidTorrent, "no blocks_total");
    expect_error(header(), Errc::InvalidTorrent, "no extents");
    expect_error("hello world\n", Errc::InvalidTorrent, "line 1: expected \"key: value\"");
    expect_error(header() + "colour: blue\n", Errc::InvalidTorrent, "line 3: unknown key");
    expect_error("block_size: 4k\n", Errc::InvalidTorrent, "line 1: block_size is not a decimal");
    expect_error("block_size: -1\n", Errc::InvalidTorrent, "line 1");
    expect_error("block_size: 4097\n", Errc::InvalidTorrent, "not a power of two");
    expect_error("block_size: 0\n", Errc::InvalidTorrent, "not a power of two");
    expect_error("block_size: 99999999999999999999999\n", Errc::InvalidTorrent, "line 1");
    expect_error(header() + "block_size: 512\n", Errc::InvalidTorrent,
                 "line 3: block_size appears twice");
    expect_error("block_size: 4096\nblocks_total: 18446744073709551615\n", Errc::InvalidTorrent,
                 "line 2: block_size * blocks_total overflows");
    expect_error("block_size: 4096\noffset: 0\n", Errc::InvalidTorrent,
                 "line 2: extent before the block_size");
}

TEST(PartcloneInfo, RejectsBadExtents) {
    expect_error(header() + "offset: 00zz\nlength: 10\n", Errc::InvalidTorrent,
                 "line 3: offset is not a 64-bit hex number");
    expect_error(header() + "offset: 0x10\nlength: 10\n", Errc::InvalidTorrent, "line 3");
    expect_error(header() + "offset: \nlength: 10\n", Errc::InvalidTorrent, "line 3");
    expect_error(header() + "offset: 0\nlength: -10\n", Errc::InvalidTorrent,
                 "line 4: length is not a 64-bit hex number");
    // Missing length: followed by another offset, or by the end of the file.
    expect_error(header() + "offset: 0\noffset: 1000\nlength: 10\n", Errc::InvalidTorrent,
                 "line 3: offset without a length line");
    expect_error(header() + "offset: 0\nlength: 10\noffset: 1000\n", Errc::InvalidTorrent,
                 "line 5: offset without a length line (end of file)");
    expect_error(header() + "length: 10\n", Errc::InvalidTorrent,
                 "line 3: length without a preceding offset");
    expect_error(header() + "offset: 0\nlength: " + kZero32 + "\n", Errc::InvalidTorrent,
                 "line 4: extent at 0x0 has length 0");
    // 17 significant hex digits do not fit 64 bits.
    expect_error(header() + "offset: 10000000000000000\nlength: 10\n", Errc::InvalidTorrent,
                 "line 3: offset is not a 64-bit hex number");
    expect_error(
        "block_size: 4096\nblocks_total: 4503599627370495\noffset: "
        "fffffffffffff000\nlength: 2000\n",
        Errc::InvalidTorrent, "line 4: extent at 0xfffffffffffff000 of length 0x2000 overflows");
    expect_error(header() + "offset: ff000\nlength: 1001\n", Errc::InvalidTorrent,
                 "line 4: extent 0xff000..0x100001 ends beyond the partition");
    expect_error(header() + "offset: 0\nlength: 2000\noffset: 1000\nlength: 10\n",
                 Errc::InvalidTorrent, "line 5: extent at 0x1000 overlaps or precedes");
    expect_error(header() + "offset: 4000\nlength: 10\noffset: 0\nlength: 10\n",
                 Errc::InvalidTorrent, "line 5: extent at 0x0 overlaps or precedes");
}

TEST(PartcloneInfo, RejectsBadSha1) {
    const std::string ext = "offset: 0\nlength: 10\n";
    expect_error(header() + ext + "sha1: abc\n", Errc::InvalidTorrent,
                 "line 5: sha1 is not 40 hex");
    expect_error(header() + ext + "sha1: " + kSha + "0\n", Errc::InvalidTorrent, "line 5");
    expect_error(header() + ext + "sha1: " + std::string(39, '0') + "g\n", Errc::InvalidTorrent,
                 "line 5: sha1 is not 40 hex");
}

TEST(PartcloneInfo, EnforcesLimits) {
    ezio::PartcloneInfoLimits limits;
    limits.max_extents = 2;
    limits.max_pieces = 1;
    std::string text = header() + "offset: 0\nlength: 10\noffset: 10\nlength: 10\n";
    EXPECT_NO_THROW(ezio::parse_partclone_info(text, limits));
    expect_error(text + "offset: 20\nlength: 10\n", Errc::InvalidTorrent,
                 "line 7: more than 2 extents", limits);
    text += "sha1: " + kSha + "\n";
    EXPECT_NO_THROW(ezio::parse_partclone_info(text, limits));
    expect_error(text + "sha1: " + kSha + "\n", Errc::InvalidTorrent, "line 8: more than 1 sha1",
                 limits);
}

TEST(PartcloneInfo, MessagesDoNotEchoBinaryGarbage) {
    try {
        ezio::parse_partclone_info(header() + "offset: \x01\x02\xff" + std::string(200, 'z') +
                                   "\n");
        ADD_FAILURE();
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_LT(msg.size(), 200u);
        for (char c : msg)
            EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    }
}

TEST(PartcloneInfo, RecognisesTheFormatByContent) {
    EXPECT_TRUE(ezio::looks_like_partclone_info("block_size: 4096\nblocks_total: 1\n"));
    EXPECT_TRUE(ezio::looks_like_partclone_info("block_size: 1024\r\n"));
    EXPECT_TRUE(ezio::looks_like_partclone_info("block_size: 40"));  // head cut mid-file
    EXPECT_FALSE(ezio::looks_like_partclone_info(""));
    EXPECT_FALSE(ezio::looks_like_partclone_info("block_size:"));
    EXPECT_FALSE(ezio::looks_like_partclone_info("block_size: x\n"));
    EXPECT_FALSE(ezio::looks_like_partclone_info("block_size: 4096 bytes\n"));
    EXPECT_FALSE(ezio::looks_like_partclone_info(" block_size: 4096\n"));
    EXPECT_FALSE(ezio::looks_like_partclone_info(std::string_view("\0\0\0\0\0\0\0\0", 8)));
    EXPECT_FALSE(ezio::looks_like_partclone_info("d8:announce"));  // a .torrent

    std::ifstream in(kDataDir + "/ext4-96m-z16m.torrent.info", std::ios::binary);
    char head[64] = {};
    in.read(head, sizeof head);
    EXPECT_TRUE(ezio::looks_like_partclone_info(
        std::string_view(head, static_cast<std::size_t>(in.gcount()))));
}

TEST(PartcloneInfo, ReadFileErrors) {
    namespace fs = std::filesystem;
    EXPECT_THROW(
        {
            try {
                ezio::read_partclone_info("/nonexistent/torrent.info");
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), Errc::InvalidArgs);
                EXPECT_NE(std::string(e.what()).find("/nonexistent/torrent.info"),
                          std::string::npos);
                throw;
            }
        },
        Error);
    try {
        ezio::read_partclone_info(kDataDir);
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgs);
    }

    ezio::PartcloneInfoLimits small;
    small.max_file_bytes = 100;
    try {
        ezio::read_partclone_info(kDataDir + "/ext4-96m-z1m.torrent.info", small);
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgs);
        EXPECT_NE(std::string(e.what()).find("larger than 100 bytes"), std::string::npos);
    }

    // Parse errors carry the path.
    const fs::path bad =
        fs::temp_directory_path() / ("ezio-test-bad-info-" + std::to_string(::getpid()));
    {
        std::ofstream out(bad);
        out << header() << "offset: 0\n";
    }
    try {
        ezio::read_partclone_info(bad.string());
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidTorrent);
        EXPECT_NE(std::string(e.what()).find(bad.string() + ": torrent.info line 3"),
                  std::string::npos)
            << e.what();
    }
    fs::remove(bad);
}

}  // namespace
