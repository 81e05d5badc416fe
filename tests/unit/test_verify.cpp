// verify_image: every piece checked on several threads (small pieces
// sixteen at a time, side by side, where the CPU can), bad pieces found and
// sorted, read errors reported; and it reads the device, not the page cache
// (Target::drop_cache before reading).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "error.hpp"
#include "layout.hpp"
#include "piece_verifier.hpp"
#include "target.hpp"
#include "torrent_maker.hpp"
#include "verify.hpp"

namespace fs = std::filesystem;

namespace {

class Verify : public ::testing::Test {
  protected:
    void SetUp() override {
        // On disk, not tmpfs: dropping cached pages must mean something.
        char tmpl[] = "/var/tmp/ezio-test-verify-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        image_.resize(kPieces * kPiece + 12345);
        std::mt19937 rng(7);
        for (auto& c : image_)
            c = static_cast<char>(rng());
        write(image_);
        ezio::MakeTorrentOptions o;
        o.name = "sda1";
        o.piece_size = kPiece;
        torrent_ = ezio::load_image_torrent(ezio::make_torrent_from_image(path(), o));
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path() const { return (dir_ / "sda1.img").string(); }
    void write(const std::string& data) {
        std::ofstream out(path(),
                          std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.close();
        ASSERT_TRUE(out.good());
    }

    static constexpr int kPiece = 64 * 1024;
    static constexpr int kPieces = 40;
    fs::path dir_;
    std::string image_;
    ezio::ImageTorrent torrent_;
};

TEST_F(Verify, EveryPieceOnAnyNumberOfThreads) {
    for (int threads : {1, 2, 3, 8, 0}) {
        auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
        std::uint64_t last = 0;
        int calls = 0;
        const auto r = ezio::verify_image(
            *t, torrent_,
            [&](std::uint64_t done) {
                EXPECT_GT(done, last);
                last = done;
                ++calls;
            },
            nullptr, threads);
        EXPECT_EQ(r.io_error, 0);
        EXPECT_TRUE(r.bad_pieces.empty());
        EXPECT_EQ(r.bytes_checked, image_.size());
        EXPECT_EQ(last, image_.size());
        EXPECT_EQ(calls, kPieces + 1);
    }
}

TEST_F(Verify, FindsBadPiecesInOrder) {
    std::string bad = image_;
    for (int p : {33, 2, 17, 40})  // 40: the short last piece
        bad[static_cast<std::size_t>(p) * kPiece + 100] ^= 0x5a;
    write(bad);
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
    const auto r = ezio::verify_image(*t, torrent_, nullptr, nullptr, 3);
    EXPECT_EQ(r.io_error, 0);
    EXPECT_EQ(r.bad_pieces, (std::vector<int>{2, 17, 33, 40}));
    EXPECT_EQ(r.bytes_checked, image_.size());
}

TEST_F(Verify, ReadErrorIsReported) {
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
    fs::resize_file(path(), 10 * kPiece);  // the device "ends" early
    const auto r = ezio::verify_image(*t, torrent_, nullptr, nullptr, 2);
    EXPECT_EQ(r.io_error, EIO);
    EXPECT_STREQ(r.io_error_op, "reading");
    EXPECT_LT(r.bytes_checked, image_.size());
}

TEST_F(Verify, CancelStops) {
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
    std::atomic<bool> cancel{true};
    const auto r = ezio::verify_image(*t, torrent_, nullptr, &cancel, 2);
    EXPECT_EQ(r.bytes_checked, 0u);
}

TEST_F(Verify, SkipsPiecesCheckedAlready) {
    std::string bad = image_;
    bad[static_cast<std::size_t>(5) * kPiece] ^= 0x5a;
    write(bad);
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
    std::vector<bool> skip(kPieces + 1, false);
    skip[5] = skip[6] = true;
    const auto r = ezio::verify_image(*t, torrent_, nullptr, nullptr, 2, &skip);
    EXPECT_EQ(r.io_error, 0);
    EXPECT_TRUE(r.bad_pieces.empty());  // the bad piece was skipped
    EXPECT_EQ(r.bytes_checked, image_.size() - 2 * kPiece);
}

// Pieces larger than 1 MiB are checked one at a time, not side by side:
// the same results.
TEST_F(Verify, LargePiecesOneAtATime) {
    ezio::MakeTorrentOptions o;
    o.name = "sda1";
    o.piece_size = 2 << 20;
    std::string big(5 * (1 << 20) + 777, '\0');
    std::mt19937 rng(11);
    for (auto& c : big)
        c = static_cast<char>(rng());
    write(big);
    const auto torrent = ezio::load_image_torrent(ezio::make_torrent_from_image(path(), o));
    big[(2 << 20) + 5] ^= 0x5a;  // piece 1
    write(big);
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
    const auto r = ezio::verify_image(*t, torrent, nullptr, nullptr, 2);
    EXPECT_EQ(r.io_error, 0);
    EXPECT_EQ(r.bad_pieces, std::vector<int>{1});
    EXPECT_EQ(r.bytes_checked, big.size());
}

TEST_F(Verify, PieceVerifierChecksPiecesAsTheyComeAndFindsBadOnes) {
    std::string bad = image_;
    bad[static_cast<std::size_t>(7) * kPiece + 3] ^= 0x5a;
    write(bad);
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadOnly, true);
    ezio::PieceVerifier v(t, torrent_);
    for (int p : {0, 7, 12, 40, -1, 41})  // -1 and 41 are not pieces: ignored
        v.add(p);
    v.wait_idle();  // finish() drops what is still queued
    const auto r = v.finish();
    EXPECT_EQ(r.io_error, 0);
    ASSERT_EQ(r.checked.size(), static_cast<std::size_t>(kPieces + 1));
    int checked = 0;
    for (bool c : r.checked)
        checked += c;
    for (int p : {0, 7, 12, 40})
        EXPECT_TRUE(r.checked[static_cast<std::size_t>(p)]) << "piece " << p;
    EXPECT_EQ(checked, 4);
    EXPECT_EQ(r.bad, std::vector<int>{7});
}

// Pages of `path` in the page cache.
std::size_t resident_pages(const std::string& path, std::size_t size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    EXPECT_NE(map, MAP_FAILED);
    const long page = ::sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> vec((size + static_cast<std::size_t>(page) - 1) /
                                   static_cast<std::size_t>(page));
    EXPECT_EQ(::mincore(map, size, vec.data()), 0);
    ::munmap(map, size);
    ::close(fd);
    std::size_t n = 0;
    for (unsigned char v : vec)
        n += v & 1;
    return n;
}

TEST_F(Verify, DropCacheLeavesNoPageOfTheRangeInMemory) {
    struct statfs sfs {};
    ASSERT_EQ(::statfs(dir_.c_str(), &sfs), 0);
    if (sfs.f_type == TMPFS_MAGIC)
        GTEST_SKIP() << dir_ << " is tmpfs: its pages are the storage";
    auto t = ezio::Target::open(path(), ezio::Target::Access::ReadWrite, true);
    ASSERT_EQ(t->write_at(image_.data(), image_.size(), 0), 0);
    ASSERT_EQ(t->flush(), 0);
    std::string back(image_.size(), '\0');
    ASSERT_EQ(t->read_at(back.data(), back.size(), 0), 0);  // cached now
    ASSERT_GT(resident_pages(path(), image_.size()), 0u);
    ASSERT_EQ(t->drop_cache(0, 0), 0);
    EXPECT_EQ(resident_pages(path(), image_.size()), 0u);
    // verify_image drops them too before it reads, and still matches.
    ASSERT_EQ(t->read_at(back.data(), back.size(), 0), 0);
    const auto r = ezio::verify_image(*t, torrent_, nullptr, nullptr, 2);
    EXPECT_EQ(r.io_error, 0);
    EXPECT_TRUE(r.bad_pieces.empty());
}

}  // namespace
