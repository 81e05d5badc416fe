// Making torrents from partclone's torrent.info and from image files.
//
// Expected info-hashes of the committed samples were computed with
// python3-libtorrent 2.0.8 alone (no ezio code), from the same torrent.info:
//
//   import sys, libtorrent as lt
//   fs = lt.file_storage(); hashes = []
//   for line in open(sys.argv[1]):
//       k, _, v = line.strip().partition(': ')
//       if k == 'offset': off = v
//       elif k == 'length': fs.add_file('sda1/' + off, int(v, 16))
//       elif k == 'sha1': hashes.append(bytes.fromhex(v))
//   ct = lt.create_torrent(fs, 16777216, flags=lt.create_torrent.v1_only)
//   for i, h in enumerate(hashes): ct.set_hash(i, h)
//   print(lt.torrent_info(ct.generate()).info_hashes().v1)
//
// Image torrents are checked against an independent SHA-1 (below) and
// against libtorrent's own hashing of the extents written out as files
// (lt::set_piece_hashes), which also covers hybrid v1+v2 torrents.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <libtorrent/bdecode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/torrent_info.hpp>

#include "error.hpp"
#include "layout.hpp"
#include "partclone_info.hpp"
#include "torrent_maker.hpp"

namespace {

namespace fs = std::filesystem;
using ezio::Errc;
using ezio::Error;

const std::string kDataDir = EZIO_TEST_DATA_DIR "/partclone";
const std::string kSampleZ1m = kDataDir + "/ext4-96m-z1m.torrent.info";
const std::string kSampleZ16m = kDataDir + "/ext4-96m-z16m.torrent.info";
// See the top of this file for how these were obtained.
const std::string kSampleZ1mInfoHash = "f5074a0858962642e936ae0db670c8ac59dec99c";
const std::string kSampleZ16mInfoHash = "b0b6f97752c6c75fe655982ba53552add87c49c7";

// FIPS 180-4 SHA-1, written from the specification so that piece hashes are
// checked against something other than the code under test.
std::array<unsigned char, 20> sha1(const std::string& data) {
    std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::string m = data;
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    m += '\x80';
    while (m.size() % 64 != 56)
        m += '\0';
    for (int i = 7; i >= 0; --i)
        m += static_cast<char>((bits >> (8 * i)) & 0xff);
    auto rol = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
    for (std::size_t block = 0; block < m.size(); block += 64) {
        std::uint32_t w[80];
        for (int t = 0; t < 16; ++t) {
            const auto* p = reinterpret_cast<const unsigned char*>(m.data() + block + 4 * t);
            w[t] = std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 |
                   std::uint32_t{p[2]} << 8 | p[3];
        }
        for (int t = 16; t < 80; ++t)
            w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
        std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int t = 0; t < 80; ++t) {
            std::uint32_t f, k;
            if (t < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (t < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (t < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            const std::uint32_t tmp = rol(a, 5) + f + e + k + w[t];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = tmp;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    std::array<unsigned char, 20> out{};
    for (int i = 0; i < 20; ++i)
        out[static_cast<std::size_t>(i)] =
            static_cast<unsigned char>(h[i / 4] >> (24 - 8 * (i % 4)));
    return out;
}

std::array<unsigned char, 20> to_array(const lt::sha1_hash& h) {
    std::array<unsigned char, 20> a{};
    std::memcpy(a.data(), h.data(), 20);
    return a;
}

lt::torrent_info load(const std::vector<char>& bytes) {
    return lt::torrent_info(
        lt::span<char const>(bytes.data(), static_cast<std::ptrdiff_t>(bytes.size())),
        lt::from_span);
}

std::string hex(const lt::sha1_hash& h) {
    std::ostringstream s;
    s << h;
    return s.str();
}

ezio::MakeTorrentOptions named(const std::string& name) {
    ezio::MakeTorrentOptions o;
    o.name = name;
    return o;
}

template <typename F>
void expect_error(F&& f, Errc code, const std::string& needle = {}) {
    try {
        f();
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "message \"" << e.what() << "\" lacks \"" << needle << "\"";
    }
}

// ---------------------------------------------------------------- partclone

TEST(TorrentMaker, PartcloneSampleMatchesReference) {
    const auto info = ezio::read_partclone_info(kSampleZ1m);
    const auto r = ezio::make_torrent_result_from_partclone(info, named("sda1"));
    EXPECT_EQ(r.info_hash, kSampleZ1mInfoHash);
    EXPECT_TRUE(r.info_hash_v2.empty());
    EXPECT_EQ(r.source, ezio::TorrentSource::PartcloneInfo);
    EXPECT_EQ(r.piece_size, 16 * 1024 * 1024);
    EXPECT_EQ(r.piece_count, 4u);
    EXPECT_EQ(r.extent_count, 57u);
    EXPECT_EQ(r.total_bytes, 54054912u);
    EXPECT_EQ(r.source_bytes, 96u * 1024 * 1024);

    const auto ti = load(r.torrent);
    EXPECT_EQ(hex(ti.info_hashes().v1), kSampleZ1mInfoHash);
    EXPECT_TRUE(ti.info_hashes().has_v1());
    EXPECT_FALSE(ti.info_hashes().has_v2());
    EXPECT_EQ(ti.name(), "sda1");
    EXPECT_EQ(ti.piece_length(), 16 * 1024 * 1024);
    ASSERT_EQ(ti.num_pieces(), 4);
    const auto& files = ti.files();
    ASSERT_EQ(files.num_files(), 57);  // no pad files
    for (lt::file_index_t i{0}; i < files.end_file(); ++i) {
        const auto& e = info.extents[static_cast<std::size_t>(static_cast<int>(i))];
        EXPECT_FALSE(files.pad_file_at(i));
        EXPECT_EQ(files.file_path(i), "sda1/" + e.offset_text);
        EXPECT_EQ(static_cast<std::uint64_t>(files.file_size(i)), e.length);
    }
    for (int p = 0; p < 4; ++p)
        EXPECT_EQ(to_array(ti.hash_for_piece(lt::piece_index_t{p})),
                  info.pieces[static_cast<std::size_t>(p)]);

    // ezio's own loader accepts it and sees the same extents.
    const auto loaded = ezio::load_image_torrent(r.torrent);
    EXPECT_EQ(loaded.layout.extent_count(), 57u);
    EXPECT_EQ(loaded.layout.data_bytes(), 54054912u);
    EXPECT_EQ(loaded.layout.end(), 0x4800400u + 0x40800u);
    EXPECT_EQ(loaded.layout.device_offset(lt::file_index_t{7}), 0x800400u);
}

TEST(TorrentMaker, PartcloneSample16mMatchesReference) {
    const auto info = ezio::read_partclone_info(kSampleZ16m);
    const auto bytes = ezio::make_torrent_from_partclone(info, named("sda1"));
    EXPECT_EQ(hex(load(bytes).info_hashes().v1), kSampleZ16mInfoHash);
}

TEST(TorrentMaker, PartcloneIsByteIdenticalToCreateTorrent) {
    const auto info = ezio::read_partclone_info(kSampleZ16m);
    ezio::MakeTorrentOptions o = named("nvme0n1p2");
    o.trackers = {"http://10.0.0.1:6969/announce", "udp://10.0.0.2:6969"};
    o.comment = "golden image";
    o.creator = "test";
    o.creation_date = 1700000000;
    const auto ours = ezio::make_torrent_from_partclone(info, o);

    lt::file_storage fs;
    for (const auto& e : info.extents)
        fs.add_file("nvme0n1p2/" + e.offset_text, static_cast<std::int64_t>(e.length));
    lt::create_torrent ct(fs, 16 * 1024 * 1024, lt::create_torrent::v1_only);
    for (std::size_t i = 0; i < info.pieces.size(); ++i)
        ct.set_hash(lt::piece_index_t{static_cast<int>(i)},
                    lt::sha1_hash(reinterpret_cast<const char*>(info.pieces[i].data())));
    ct.add_tracker("http://10.0.0.1:6969/announce", 0);
    ct.add_tracker("udp://10.0.0.2:6969", 1);
    ct.set_comment("golden image");
    ct.set_creator("test");
    ct.set_creation_date(1700000000);
    EXPECT_EQ(ours, ct.generate_buf());

    const auto ti = load(ours);
    ASSERT_EQ(ti.trackers().size(), 2u);
    EXPECT_EQ(ti.trackers()[0].tier, 0);
    EXPECT_EQ(ti.trackers()[1].tier, 1);
    EXPECT_EQ(ti.comment(), "golden image");
}

TEST(TorrentMaker, OutputIsDeterministicByDefault) {
    const auto info = ezio::read_partclone_info(kSampleZ16m);
    const auto a = ezio::make_torrent_from_partclone(info, named("sda1"));
    const auto b = ezio::make_torrent_from_partclone(info, named("sda1"));
    EXPECT_EQ(a, b);
    const std::string text(a.begin(), a.end());
    EXPECT_EQ(text.find("creation date"), std::string::npos);
    EXPECT_NE(text.find("10:created by" + std::to_string(ezio::default_torrent_creator().size()) +
                        ":" + ezio::default_torrent_creator()),
              std::string::npos);
    EXPECT_EQ(load(a).creator(), std::string("ezio ") + EZIO_VERSION);
}

TEST(TorrentMaker, PartcloneRejectsInconsistentInput) {
    auto info = ezio::read_partclone_info(kSampleZ1m);
    auto fewer = info;
    fewer.pieces.pop_back();
    expect_error([&] { ezio::make_torrent_from_partclone(fewer, named("sda1")); },
                 Errc::InvalidTorrent,
                 "has 3 piece hashes, but 57 extents totalling 54054912 bytes make 4 pieces");
    auto more = info;
    more.pieces.push_back(more.pieces[0]);
    expect_error([&] { ezio::make_torrent_from_partclone(more, named("sda1")); },
                 Errc::InvalidTorrent, "has 5 piece hashes");
    auto none = info;
    none.extents.clear();
    expect_error([&] { ezio::make_torrent_from_partclone(none, named("sda1")); },
                 Errc::InvalidTorrent);

    auto o = named("sda1");
    o.piece_size = 4 * 1024 * 1024;
    expect_error([&] { ezio::make_torrent_from_partclone(info, o); }, Errc::InvalidArgs, "16 MiB");
    o = named("sda1");
    o.skip_zero = true;
    expect_error([&] { ezio::make_torrent_from_partclone(info, o); }, Errc::InvalidArgs);
    o = named("sda1");
    o.hybrid = true;
    expect_error([&] { ezio::make_torrent_from_partclone(info, o); }, Errc::InvalidArgs);
    o = named("sda1");
    o.piece_size = 16 * 1024 * 1024;  // explicit and right: fine
    EXPECT_NO_THROW(ezio::make_torrent_from_partclone(info, o));
}

TEST(TorrentMaker, RejectsBadNamesAndTrackers) {
    const auto info = ezio::read_partclone_info(kSampleZ16m);
    const std::vector<std::string> bad_names = {
        "", ".", "..", "a/b", "a\\b", "a\nb", std::string(256, 'x')};
    for (const auto& bad : bad_names)
        expect_error([&] { ezio::make_torrent_from_partclone(info, named(bad)); },
                     Errc::InvalidArgs);
    auto o = named("sda1");
    o.trackers = {"http://x/announce", ""};
    expect_error([&] { ezio::make_torrent_from_partclone(info, o); }, Errc::InvalidArgs);
    o.trackers = {"http://x/ announce"};
    expect_error([&] { ezio::make_torrent_from_partclone(info, o); }, Errc::InvalidArgs);
}

// ------------------------------------------------------------------- images

class ImageTorrent : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ezio-test-maker-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string write(const std::string& name, const std::string& content) {
        const auto p = dir_ / name;
        std::ofstream out(p, std::ios::binary);
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        out.close();
        EXPECT_TRUE(out.good());
        return p.string();
    }

    fs::path dir_;
};

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kChunk = 64 * kKiB;
constexpr int kPiece = 256 * 1024;

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(rng() | 1);  // never a zero byte
    return s;
}

// 20 chunks of 64 KiB and a 5000-byte tail:
//   c0 data | c1 zero | c2..c11 data | c12..c13 zero | c14 zero but its last
//   byte | c15 data | c16..c19 zero | tail data
// Non-zero runs: [0,64K) [128K,768K) [896K,1024K) [1280K,1280K+5000).
std::string patterned_image() {
    std::string img(20 * kChunk + 5000, '\0');
    auto put = [&](std::size_t chunk, std::size_t count, unsigned seed) {
        const auto d = random_bytes(count * kChunk, seed);
        std::memcpy(img.data() + chunk * kChunk, d.data(), d.size());
    };
    put(0, 1, 1);
    put(2, 10, 2);
    img[15 * kChunk - 1] = 7;
    put(15, 1, 3);
    const auto tail = random_bytes(5000, 4);
    std::memcpy(img.data() + 20 * kChunk, tail.data(), tail.size());
    return img;
}

struct Run {
    std::size_t offset, length;
};
const std::vector<Run> kRuns = {
    {0, 64 * kKiB}, {128 * kKiB, 640 * kKiB}, {896 * kKiB, 128 * kKiB}, {1280 * kKiB, 5000}};

std::string hex32(std::size_t v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%032zx", v);
    return buf;
}

// The info-hash libtorrent itself computes when the extents are files on
// disk: the reference for both v1 and hybrid torrents.
lt::info_hash_t reference_info_hash(const fs::path& root, const std::string& image,
                                    const std::string& name, const std::vector<Run>& runs,
                                    int piece, lt::create_flags_t flags) {
    fs::create_directories(root / name);
    lt::file_storage files;
    for (const auto& r : runs) {
        std::ofstream out(root / name / hex32(r.offset), std::ios::binary);
        out.write(image.data() + r.offset, static_cast<std::streamsize>(r.length));
        files.add_file(name + "/" + hex32(r.offset), static_cast<std::int64_t>(r.length));
    }
    lt::create_torrent ct(files, piece, flags);
    lt::set_piece_hashes(ct, root.string());
    const auto bytes = ct.generate_buf();
    return load(bytes).info_hashes();
}

TEST_F(ImageTorrent, WholeImageV1PieceHashes) {
    const std::string img = patterned_image();
    const auto path = write("disk.img", img);
    auto o = named("sdb1");
    o.piece_size = kPiece;
    o.threads = 3;
    std::uint64_t last_done = 0, last_total = 0;
    o.progress = [&](std::uint64_t done, std::uint64_t total) {
        EXPECT_GE(done, last_done);
        last_done = done;
        last_total = total;
    };
    const auto r = ezio::make_torrent_result_from_image(path, o);
    EXPECT_EQ(last_done, img.size());
    EXPECT_EQ(last_total, img.size());
    EXPECT_EQ(r.source, ezio::TorrentSource::ImageFile);
    EXPECT_EQ(r.extent_count, 1u);
    EXPECT_EQ(r.total_bytes, img.size());
    EXPECT_EQ(r.source_bytes, img.size());

    const auto ti = load(r.torrent);
    EXPECT_FALSE(ti.info_hashes().has_v2());
    ASSERT_EQ(ti.num_files(), 1);
    EXPECT_EQ(ti.files().file_path(lt::file_index_t{0}), "sdb1/" + hex32(0));
    const int pieces = static_cast<int>((img.size() + kPiece - 1) / kPiece);
    ASSERT_EQ(ti.num_pieces(), pieces);
    ASSERT_EQ(r.piece_count, static_cast<std::size_t>(pieces));
    for (int p = 0; p < pieces; ++p)
        EXPECT_EQ(to_array(ti.hash_for_piece(lt::piece_index_t{p})),
                  sha1(img.substr(static_cast<std::size_t>(p) * kPiece, kPiece)))
            << "piece " << p;
}

TEST_F(ImageTorrent, SkipZeroLeavesZeroChunksOut) {
    const std::string img = patterned_image();
    const auto path = write("disk.img", img);
    auto o = named("sdb1");
    o.piece_size = kPiece;
    o.chunk_size = kChunk;
    o.skip_zero = true;
    o.threads = 2;
    const auto r = ezio::make_torrent_result_from_image(path, o);

    std::string kept;
    for (const auto& run : kRuns)
        kept += img.substr(run.offset, run.length);
    EXPECT_EQ(r.total_bytes, kept.size());
    EXPECT_EQ(r.extent_count, kRuns.size());

    const auto ti = load(r.torrent);
    ASSERT_EQ(ti.num_files(), static_cast<int>(kRuns.size()));
    for (std::size_t i = 0; i < kRuns.size(); ++i) {
        const lt::file_index_t f{static_cast<int>(i)};
        EXPECT_EQ(ti.files().file_path(f), "sdb1/" + hex32(kRuns[i].offset));
        EXPECT_EQ(static_cast<std::size_t>(ti.files().file_size(f)), kRuns[i].length);
    }
    const int pieces = static_cast<int>((kept.size() + kPiece - 1) / kPiece);
    ASSERT_EQ(ti.num_pieces(), pieces);
    for (int p = 0; p < pieces; ++p)
        EXPECT_EQ(to_array(ti.hash_for_piece(lt::piece_index_t{p})),
                  sha1(kept.substr(static_cast<std::size_t>(p) * kPiece, kPiece)))
            << "piece " << p;

    EXPECT_EQ(ti.info_hashes(), reference_info_hash(dir_ / "ref", img, "sdb1", kRuns, kPiece,
                                                    lt::create_torrent::v1_only));
    const auto loaded = ezio::load_image_torrent(r.torrent);
    EXPECT_EQ(loaded.layout.end(), img.size());
}

TEST_F(ImageTorrent, HybridMatchesLibtorrent) {
    const std::string img = patterned_image();
    const auto path = write("disk.img", img);
    auto o = named("sdb1");
    o.piece_size = kPiece;
    o.chunk_size = kChunk;
    o.skip_zero = true;
    o.hybrid = true;
    const auto r = ezio::make_torrent_result_from_image(path, o);
    const auto ti = load(r.torrent);
    EXPECT_TRUE(ti.info_hashes().has_v1());
    EXPECT_TRUE(ti.info_hashes().has_v2());
    EXPECT_EQ(r.extent_count, kRuns.size());
    EXPECT_EQ(r.info_hash_v2.size(), 64u);

    const auto ref = reference_info_hash(dir_ / "ref", img, "sdb1", kRuns, kPiece, {});
    EXPECT_EQ(ti.info_hashes(), ref);

    // Whole image, one extent of several pieces with a short last one.
    o.skip_zero = false;
    const auto whole = load(ezio::make_torrent_from_image(path, o));
    EXPECT_EQ(whole.info_hashes(),
              reference_info_hash(dir_ / "ref2", img, "sdb1", {{0, img.size()}}, kPiece, {}));
}

TEST_F(ImageTorrent, DefaultsAndSmallPieces) {
    const std::string img = patterned_image();
    const auto path = write("disk.img", img);
    const auto r = ezio::make_torrent_result_from_image(path, named("x"));
    EXPECT_EQ(r.piece_size, 4 * 1024 * 1024);  // images up to 4 GiB
    EXPECT_EQ(r.piece_count, 1u);
    EXPECT_EQ(to_array(load(r.torrent).hash_for_piece(lt::piece_index_t{0})), sha1(img));

    // 16 KiB pieces with the default 1 MiB chunk: the chunk shrinks to the piece.
    auto o = named("x");
    o.piece_size = 16 * 1024;
    o.skip_zero = true;
    const auto small = ezio::make_torrent_result_from_image(path, o);
    EXPECT_EQ(small.extent_count, kRuns.size());
}

TEST_F(ImageTorrent, SourceDetection) {
    const std::string img = patterned_image();
    const auto image = write("golden.img", img);
    auto r = ezio::make_torrent(image, {});
    EXPECT_EQ(r.source, ezio::TorrentSource::ImageFile);
    EXPECT_EQ(r.name, "golden");

    // A torrent.info is recognised by content, whatever its file name.
    fs::create_directories(dir_ / "sda7");
    fs::copy_file(kSampleZ1m, dir_ / "sda7" / "torrent.info");
    fs::copy_file(kSampleZ1m, dir_ / "sda7" / "renamed.txt");
    for (const auto& src :
         {dir_ / "sda7" / "torrent.info", dir_ / "sda7" / "renamed.txt", dir_ / "sda7"}) {
        r = ezio::make_torrent(src.string(), {});
        EXPECT_EQ(r.source, ezio::TorrentSource::PartcloneInfo) << src;
        EXPECT_EQ(r.name, "sda7") << src;
    }
    ezio::MakeTorrentOptions o;
    o.name = "sda1";
    EXPECT_EQ(ezio::make_torrent((dir_ / "sda7/").string(), o).info_hash, kSampleZ1mInfoHash);

    expect_error([&] { ezio::make_torrent(dir_.string(), {}); }, Errc::InvalidArgs,
                 "without a torrent.info");
}

TEST_F(ImageTorrent, Errors) {
    const auto o = named("x");
    expect_error([&] { ezio::make_torrent_from_image((dir_ / "missing").string(), o); },
                 Errc::InvalidArgs, "cannot open");
    expect_error([&] { ezio::make_torrent((dir_ / "missing").string(), o); }, Errc::InvalidArgs);
    expect_error([&] { ezio::make_torrent_from_image("/dev/null", o); }, Errc::InvalidArgs,
                 "neither a regular file nor a block device");
    expect_error([&] { ezio::make_torrent_from_image(dir_.string(), o); }, Errc::InvalidArgs);
    const auto empty = write("empty.img", "");
    expect_error([&] { ezio::make_torrent_from_image(empty, o); }, Errc::InvalidArgs, "is empty");
    const auto zeros = write("zeros.img", std::string(3 * 1024 * 1024 + 17, '\0'));
    auto z = o;
    z.skip_zero = true;
    expect_error([&] { ezio::make_torrent_from_image(zeros, z); }, Errc::InvalidArgs, "only zeros");
    EXPECT_NO_THROW(
        ezio::make_torrent_from_image(zeros, o));  // without skip_zero it is data like any

    const auto img = write("disk.img", patterned_image());
    for (int bad : {-1, 1, 3 * 1024 * 1024, 8 * 1024, 256 * 1024 * 1024}) {
        auto b = o;
        b.piece_size = bad;
        expect_error([&] { ezio::make_torrent_from_image(img, b); }, Errc::InvalidArgs,
                     "piece size");
    }
    for (std::uint64_t bad : {0ull, 1000ull, 2048ull, 3ull * 65536}) {
        auto b = o;
        b.skip_zero = true;
        b.chunk_size = bad;
        expect_error([&] { ezio::make_torrent_from_image(img, b); }, Errc::InvalidArgs,
                     "chunk size");
    }
    auto t = o;
    t.threads = -2;
    expect_error([&] { ezio::make_torrent_from_image(img, t); }, Errc::InvalidArgs, "thread");
    expect_error([&] { ezio::make_torrent_from_image(img, named("a/b")); }, Errc::InvalidArgs);
}

// Both ways of reading: whole images are hashed from a mapping of the file
// (a page past the new end raises SIGBUS), --skip-zero reads into buffers.
TEST_F(ImageTorrent, ImageShrinkingWhileReadIsAnIoError) {
    for (const bool skip_zero : {false, true}) {
        const auto img = write("disk.img", patterned_image());
        auto o = named("x");
        o.piece_size = kPiece;
        o.skip_zero = skip_zero;
        o.progress = [&](std::uint64_t done, std::uint64_t) {
            if (done >= 2 * static_cast<std::uint64_t>(kPiece)) {
                ASSERT_EQ(::truncate(img.c_str(), kPiece), 0);
            }
        };
        expect_error([&] { ezio::make_torrent_from_image(img, o); }, Errc::IoError,
                     "before its size when opened");
    }
}

// A file whose file system cannot map it is read instead: a sysfs attribute
// says it is 4096 bytes but holds a few, which only the reading path can
// notice (a mapping would fail with ENODEV first).
TEST_F(ImageTorrent, UnmappableFileIsRead) {
    const std::string attr = "/sys/kernel/uevent_seqnum";
    struct stat st {};
    if (::stat(attr.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        GTEST_SKIP() << attr << " is missing or empty: sysfs is not mounted here, and "
                     << "without it this machine has no sized file the kernel refuses to map";
    expect_error([&] { ezio::make_torrent_from_image(attr, named("x")); }, Errc::IoError,
                 "before its size when opened");
}

TEST_F(ImageTorrent, UnreadableFile) {
    const auto img = write("secret.img", "data");
    ASSERT_EQ(::chmod(img.c_str(), 0), 0);
    // Root reads any file: the check runs in a child that gives root up
    // first (uid/gid 65534, nobody), so it means the same for every caller.
    ::chmod(dir_.c_str(), 0755);
    EXPECT_EXIT(
        {
            if (::geteuid() == 0 &&
                (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
                 ::setresuid(65534, 65534, 65534) != 0))
                std::_Exit(3);
            try {
                ezio::make_torrent_from_image(img, named("x"));
            } catch (const ezio::Error& e) {
                const bool ok =
                    e.code() == Errc::InvalidArgs &&
                    std::string(e.what()).find("Permission denied") != std::string::npos;
                std::_Exit(ok ? 0 : 1);
            }
            std::_Exit(2);
        },
        ::testing::ExitedWithCode(0), "");
}

}  // namespace

// ------------------------------------------------- torrent.info, rehashed

// A 40 MiB partition with three used extents (22 MiB and a bit: two
// partclone pieces) and partclone's description of it.
struct CapturedPartition {
    std::string image;
    ezio::PartcloneInfo info;
    std::vector<Run> runs;
};

CapturedPartition captured_partition() {
    constexpr std::size_t kMiB = 1024 * 1024;
    CapturedPartition c;
    c.image.assign(40 * kMiB, '\0');
    c.runs = {{0, 5 * kMiB}, {8 * kMiB, 14 * kMiB}, {30 * kMiB, 3 * kMiB + 12345}};
    unsigned seed = 10;
    std::string data;
    for (const auto& r : c.runs) {
        const auto d = random_bytes(r.length, seed++);
        std::memcpy(c.image.data() + r.offset, d.data(), d.size());
        data += d;
        c.info.extents.push_back({r.offset, r.length, hex32(r.offset)});
    }
    c.info.block_size = 4096;
    c.info.blocks_total = c.image.size() / 4096;
    constexpr std::size_t kBig = 16 * kMiB;
    for (std::size_t at = 0; at < data.size(); at += kBig) {
        const auto h =
            lt::hasher(data.data() + at, static_cast<int>(std::min(kBig, data.size() - at)))
                .final();
        c.info.pieces.push_back(to_array(h));
    }
    return c;
}

TEST(TorrentMaker, RehashPieceSize) {
    constexpr std::uint64_t kMiB = 1024 * 1024;
    EXPECT_EQ(ezio::rehash_piece_size(1), 256 * 1024);
    EXPECT_EQ(ezio::rehash_piece_size(154 * kMiB), 256 * 1024);
    EXPECT_EQ(ezio::rehash_piece_size(1024 * kMiB), 1024 * 1024);
    EXPECT_EQ(ezio::rehash_piece_size(8192 * kMiB), 8 * 1024 * 1024);
    EXPECT_EQ(ezio::rehash_piece_size(50000 * kMiB), 16 * 1024 * 1024);
}

TEST_F(ImageTorrent, PartcloneRehashedFromThePartition) {
    const auto c = captured_partition();
    const auto dev = write("sda1.img", c.image);
    for (const int piece : {16 * 1024, 256 * 1024, 1024 * 1024, 16 * 1024 * 1024, 0}) {
        auto o = named("sda1");
        o.data_source = dev;
        o.piece_size = piece;
        o.threads = 3;
        std::uint64_t last_done = 0;
        o.progress = [&](std::uint64_t done, std::uint64_t) { last_done = done; };
        const auto r = ezio::make_torrent_result_from_partclone(c.info, o);
        const int want_piece = piece ? piece : 256 * 1024;
        EXPECT_EQ(r.piece_size, want_piece);
        EXPECT_EQ(last_done, r.total_bytes);
        EXPECT_EQ(r.source, ezio::TorrentSource::PartcloneInfo);
        EXPECT_EQ(r.extent_count, 3u);
        // The same torrent libtorrent makes from the extents as files.
        const auto ref =
            reference_info_hash(dir_ / ("ref" + std::to_string(piece)), c.image, "sda1", c.runs,
                                want_piece, lt::create_torrent::v1_only);
        EXPECT_EQ(hex(load(r.torrent).info_hashes().v1), hex(ref.v1)) << "piece " << piece;
        // And every piece is the SHA-1 of its bytes on the partition.
        const auto loaded = ezio::load_image_torrent(r.torrent);
        const auto& ti = *loaded.info;
        std::string data;
        for (const auto& run : c.runs)
            data += c.image.substr(run.offset, run.length);
        for (int p = 0; p < ti.num_pieces(); ++p)
            EXPECT_EQ(to_array(ti.hash_for_piece(lt::piece_index_t{p})),
                      to_array(lt::hasher(data.data() + static_cast<std::size_t>(p) * want_piece,
                                          ti.piece_size(lt::piece_index_t{p}))
                                   .final()))
                << "piece " << p;
    }
    // At 16 MiB the hashes are partclone's own: the plain torrent.info torrent.
    auto o = named("sda1");
    o.data_source = dev;
    o.piece_size = 16 * 1024 * 1024;
    EXPECT_EQ(ezio::make_torrent_from_partclone(c.info, o),
              ezio::make_torrent_from_partclone(c.info, named("sda1")));
}

TEST_F(ImageTorrent, PartcloneRehashRefusesOtherData) {
    auto c = captured_partition();
    auto o = named("sda1");
    o.piece_size = 1024 * 1024;
    // One byte of a used block changed since the capture.
    std::string changed = c.image;
    changed[20 * 1024 * 1024] ^= 1;
    o.data_source = write("changed.img", changed);
    expect_error([&] { ezio::make_torrent_from_partclone(c.info, o); }, Errc::InvalidArgs,
                 "does not hold what partclone captured: 16 MiB piece 1");
    // Too small for the last extent.
    o.data_source = write("small.img", c.image.substr(0, 32 * 1024 * 1024));
    expect_error([&] { ezio::make_torrent_from_partclone(c.info, o); }, Errc::InvalidArgs,
                 "too small");
    o.data_source = (dir_ / "missing.img").string();
    expect_error([&] { ezio::make_torrent_from_partclone(c.info, o); }, Errc::InvalidArgs,
                 "cannot open");
    // Piece sizes: powers of two up to partclone's 16 MiB.
    o.data_source = write("sda1.img", c.image);
    for (const int bad : {32 * 1024 * 1024, 3 * 1024 * 1024, 8 * 1024, -1}) {
        o.piece_size = bad;
        expect_error([&] { ezio::make_torrent_from_partclone(c.info, o); }, Errc::InvalidArgs,
                     "16 KiB to 16 MiB");
    }
    // A data source is for torrent.info only.
    auto img = named("sda1");
    img.data_source = o.data_source;
    expect_error([&] { ezio::make_torrent_result_from_image(o.data_source, img); },
                 Errc::InvalidArgs, "torrent.info only");
}
