// RawDiskIO driven directly, as libtorrent's network thread would: blocks
// written in any order land at their extents (and nowhere else), hashes
// match the torrent's (also when many pieces are hashed side by side),
// reads see pending writes, coalesced writes complete only once written,
// errors reach every block of a run, back-pressure is released, and a stop
// completes after every write and hash queued before it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/disk_observer.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/io_context.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_info.hpp>

#include "layout.hpp"
#include "raw_disk_io.hpp"
#include "sha1_lanes.hpp"
#include "target.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr int kBlock = 16 * 1024;
constexpr int kPiece = 4 * kBlock;
constexpr char kPattern = '\x5a';

std::vector<char> random_bytes(std::size_t size, std::uint64_t seed) {
    std::vector<char> out(size);
    std::mt19937_64 rng(seed);
    for (auto& c : out)
        c = static_cast<char>(rng());
    return out;
}

std::string hex_name(std::uint64_t offset) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032llx", static_cast<unsigned long long>(offset));
    return buf;
}

// A partition image of three extents whose lengths do not line up with
// blocks or pieces, so blocks straddle extents.
struct Image {
    struct Extent {
        std::uint64_t offset, length;
    };
    std::vector<Extent> extents{
        {0x10000, 40 * 1024}, {0x40000, 100 * 1024 + 4096}, {0x90000, 36 * 1024}};
    std::vector<char> stream;  // the extents back to back, as the torrent sees them
    std::shared_ptr<lt::torrent_info> info;
    ezio::ImageLayout layout;
    std::uint64_t device_size = 0x100000;

    Image() { build(); }
    Image(std::vector<Extent> e, std::uint64_t size) : extents(std::move(e)), device_size(size) {
        build();
    }
    void build() {
        lt::file_storage fs;
        std::uint64_t total = 0;
        for (const auto& e : extents) {
            fs.add_file("sda1/" + hex_name(e.offset), static_cast<std::int64_t>(e.length));
            total += e.length;
        }
        stream = random_bytes(total, 7);
        lt::create_torrent ct(fs, kPiece, lt::create_torrent::v1_only);
        for (lt::piece_index_t p{0}; p < fs.end_piece(); ++p) {
            const auto start = static_cast<std::size_t>(static_cast<int>(p)) * kPiece;
            const auto len = static_cast<std::size_t>(fs.piece_size(p));
            ct.set_hash(p, lt::hasher(stream.data() + start, static_cast<int>(len)).final());
        }
        std::vector<char> bytes;
        lt::bencode(std::back_inserter(bytes), ct.generate());
        info = std::make_shared<lt::torrent_info>(bytes, lt::from_span);
        layout = ezio::ImageLayout::from_files(info->files());
    }
    int pieces() const { return info->num_pieces(); }
    int piece_size(int p) const { return info->piece_size(lt::piece_index_t{p}); }
    const char* at(int piece, int offset) const {
        return stream.data() + static_cast<std::size_t>(piece) * kPiece + offset;
    }
};

class Observer final : public lt::disk_observer {
  public:
    void on_disk() override { ++calls; }
    int calls = 0;
};

// One RawDiskIO with a target file pre-filled with kPattern.
class RawDiskIOTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ezio-rawio-XXXXXX";
        dir = ::mkdtemp(tmpl);
        path = (dir / "disk.img").string();
        std::string disk(image.device_size, kPattern);
        if (access() == ezio::Target::Access::ReadOnly)  // a source: the image is on it
            disk = image_on_disk();
        std::ofstream(path, std::ios::binary)
            .write(disk.data(), static_cast<std::streamsize>(disk.size()));
        settings.set_int(lt::settings_pack::max_queued_disk_bytes, 1 << 20);
        io = std::make_unique<ezio::RawDiskIO>(ioc, settings, 2);
        target = ezio::Target::open(path, access(), true);
        io->bind(target, image.layout);
        const std::string save_path = target->path();
        lt::storage_params params(image.info->files(), nullptr, save_path, lt::storage_mode_sparse,
                                  priorities, image.info->info_hash());
        holder = io->new_torrent(params, image.info);
        storage = static_cast<lt::storage_index_t>(holder);
    }
    void TearDown() override {
        holder.reset();
        io.reset();
        target.reset();
        fs::remove_all(dir);
    }

    virtual ezio::Target::Access access() const { return ezio::Target::Access::ReadWrite; }

    // The device with the image written at its extents.
    std::string image_on_disk() const {
        std::string disk(image.device_size, kPattern);
        std::size_t pos = 0;
        for (const auto& e : image.extents) {
            std::copy_n(image.stream.data() + pos, e.length, disk.begin() + e.offset);
            pos += e.length;
        }
        return disk;
    }

    // Runs the io_context until `done` holds or `limit` passes.
    template <typename Pred>
    bool run_until(Pred done, std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            ioc.restart();
            ioc.run_for(5ms);
        }
        return done();
    }

    bool write(int piece, int offset, int len, const char* data,
               std::vector<lt::storage_error>* errors, int* completed,
               std::shared_ptr<lt::disk_observer> obs = {}) {
        lt::peer_request r{lt::piece_index_t{piece}, offset, len};
        return io->async_write(storage, r, data, std::move(obs),
                               [errors, completed](const lt::storage_error& e) {
                                   if (errors)
                                       errors->push_back(e);
                                   ++*completed;
                               },
                               {});
    }

    // Every block of the image, as (piece, offset, length).
    std::vector<std::tuple<int, int, int>> blocks() const {
        std::vector<std::tuple<int, int, int>> out;
        for (int p = 0; p < image.pieces(); ++p)
            for (int off = 0; off < image.piece_size(p); off += kBlock)
                out.emplace_back(p, off, std::min(kBlock, image.piece_size(p) - off));
        return out;
    }

    lt::sha1_hash hash(int piece, lt::storage_error* error = nullptr) {
        bool done = false;
        lt::sha1_hash out;
        io->async_hash(storage, lt::piece_index_t{piece}, {}, lt::disk_interface::v1_hash,
                       [&](lt::piece_index_t, const lt::sha1_hash& h, const lt::storage_error& e) {
                           out = h;
                           if (error)
                               *error = e;
                           done = true;
                       });
        io->submit_jobs();
        EXPECT_TRUE(run_until([&] { return done; }));
        return out;
    }

    std::vector<char> read_block(int piece, int offset, int len) {
        lt::storage_error error;
        lt::disk_buffer_holder b = read_holder(piece, offset, len, &error);
        EXPECT_FALSE(error.ec) << error.ec.message();
        return b ? std::vector<char>(b.data(), b.data() + b.size()) : std::vector<char>{};
    }

    // The buffer libtorrent would get for a read (and its error).
    lt::disk_buffer_holder read_holder(int piece, int offset, int len, lt::storage_error* error) {
        bool done = false;
        lt::disk_buffer_holder out;
        io->async_read(storage, lt::peer_request{lt::piece_index_t{piece}, offset, len},
                       [&](lt::disk_buffer_holder b, const lt::storage_error& e) {
                           *error = e;
                           out = std::move(b);
                           done = true;
                       },
                       {});
        io->submit_jobs();
        EXPECT_TRUE(run_until([&] { return done; }));
        return out;
    }

    std::vector<char> device() const {
        std::ifstream in(path, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }

    // Extent bytes that differ from the image, and bytes elsewhere that are
    // not the pattern.
    std::pair<std::size_t, std::size_t> wrong_bytes() const {
        const auto dev = device();
        std::vector<bool> covered(dev.size(), false);
        std::size_t wrong_in = 0, wrong_out = 0, pos = 0;
        for (const auto& e : image.extents) {
            for (std::uint64_t i = 0; i < e.length; ++i) {
                covered[e.offset + i] = true;
                wrong_in += dev[e.offset + i] != image.stream[pos + i];
            }
            pos += e.length;
        }
        for (std::size_t i = 0; i < dev.size(); ++i)
            wrong_out += !covered[i] && dev[i] != kPattern;
        return {wrong_in, wrong_out};
    }

    Image image;
    fs::path dir;
    std::string path;
    lt::io_context ioc;
    lt::settings_pack settings;
    lt::aux::vector<lt::download_priority_t, lt::file_index_t> priorities;
    std::unique_ptr<ezio::RawDiskIO> io;
    std::shared_ptr<ezio::Target> target;
    lt::storage_holder holder;
    lt::storage_index_t storage{0};
};

TEST_F(RawDiskIOTest, BlocksInAnyOrderLandAtTheirExtentsAndHashRight) {
    auto all = blocks();
    std::shuffle(all.begin(), all.end(), std::mt19937(3));
    int completed = 0;
    std::vector<lt::storage_error> errors;
    for (const auto& [p, off, len] : all)
        write(p, off, len, image.at(p, off), &errors, &completed);
    io->submit_jobs();
    for (int p = 0; p < image.pieces(); ++p)
        EXPECT_EQ(hash(p), image.info->hash_for_piece(lt::piece_index_t{p})) << "piece " << p;
    ASSERT_TRUE(run_until([&] { return completed == static_cast<int>(all.size()); }));
    for (const auto& e : errors)
        EXPECT_FALSE(e.ec) << e.ec.message();
    const auto [wrong_in, wrong_out] = wrong_bytes();
    EXPECT_EQ(wrong_in, 0u);
    EXPECT_EQ(wrong_out, 0u);
    EXPECT_EQ(io->queued_write_bytes(), 0);
}

TEST_F(RawDiskIOTest, InOrderBlocksAreWrittenTogetherAndCompleteOnlyWhenWritten) {
    // Three of the four blocks of piece 0: they wait on the network thread
    // for the fourth, and are not reported written meanwhile...
    int completed = 0;
    for (int off = 0; off < 3 * kBlock; off += kBlock)
        write(0, off, kBlock, image.at(0, off), nullptr, &completed);
    io->submit_jobs();
    EXPECT_EQ(completed, 0);
    EXPECT_EQ(io->queued_write_bytes(), 3 * kBlock);
    EXPECT_EQ(device(), std::vector<char>(image.device_size, kPattern));
    // ...until no block came for a moment (the peer stalled, paused or
    // left): then they are written as they are, in one run.
    ASSERT_TRUE(run_until([&] { return completed == 3; }));
    EXPECT_EQ(io->queued_write_bytes(), 0);
    bool stopped = false;
    io->async_stop_torrent(storage, [&] { stopped = true; });
    io->submit_jobs();
    ASSERT_TRUE(run_until([&] { return stopped; }));
    // On the device: 40 KiB in the first extent, the other 8 KiB at the
    // start of the second.
    const auto dev = device();
    const auto e0 = static_cast<long>(image.extents[0].offset);
    const auto e1 = static_cast<long>(image.extents[1].offset);
    EXPECT_TRUE(
        std::equal(image.stream.begin(), image.stream.begin() + 40 * 1024, dev.begin() + e0));
    EXPECT_TRUE(std::equal(image.stream.begin() + 40 * 1024, image.stream.begin() + 48 * 1024,
                           dev.begin() + e1));
    EXPECT_EQ(dev[static_cast<std::size_t>(e1) + 8 * 1024], kPattern);
}

TEST_F(RawDiskIOTest, AWholePieceInOrderIsWrittenAtOnce) {
    // The last piece (52 KiB: three blocks and a short one), in order: it
    // is written as soon as its last byte is there, hash or not.
    int completed = 0;
    const int size = image.piece_size(image.pieces() - 1);
    int blocks = 0;
    for (int off = 0; off < size; off += kBlock, ++blocks)
        write(image.pieces() - 1, off, std::min(kBlock, size - off),
              image.at(image.pieces() - 1, off), nullptr, &completed);
    io->submit_jobs();
    ASSERT_TRUE(run_until([&] { return completed == blocks; }));
    EXPECT_EQ(io->queued_write_bytes(), 0);
}

TEST_F(RawDiskIOTest, ReadsSeeWritesStillPendingAndReadAheadServesTheNextBlocks) {
    int completed = 0;
    for (int off = 0; off < image.piece_size(1); off += kBlock)
        write(1, off, kBlock, image.at(1, off), nullptr, &completed);
    io->submit_jobs();
    // Read straight away: the read must write what waits first.
    for (int off = 0; off < image.piece_size(1); off += kBlock)
        EXPECT_EQ(read_block(1, off, kBlock),
                  std::vector<char>(image.at(1, off), image.at(1, off) + kBlock))
            << "offset " << off;
    ASSERT_TRUE(run_until([&] { return completed == image.piece_size(1) / kBlock; }));
    // Rewriting a piece forgets what was read ahead of it.
    const auto other = random_bytes(kBlock, 99);
    write(1, kBlock, kBlock, other.data(), nullptr, &completed);
    io->submit_jobs();
    EXPECT_EQ(read_block(1, kBlock, kBlock), other);
    // A target this process writes is read, never mapped.
    EXPECT_EQ(io->mapped_read_bytes(), 0);
}

// A source opened read-only (a seeder's partition or image) is served from
// a mapping of the device where a read chunk is one range of it, and read
// where it spans extents.
class RawDiskIOSourceTest : public RawDiskIOTest {
  protected:
    ezio::Target::Access access() const override { return ezio::Target::Access::ReadOnly; }
};

TEST_F(RawDiskIOSourceTest, EveryBlockHasItsBytesMappedWhereTheChunkIsOneRange) {
    for (const auto& [piece, offset, len] : blocks())
        EXPECT_EQ(read_block(piece, offset, len),
                  std::vector<char>(image.at(piece, offset), image.at(piece, offset) + len))
            << "piece " << piece << " offset " << offset;
    // Piece 1 lies inside the second extent; pieces 0 and 2 span two.
    EXPECT_EQ(io->mapped_read_bytes(), image.piece_size(1));
    EXPECT_EQ(hash(1), image.info->hash_for_piece(lt::piece_index_t{1}));
}

TEST_F(RawDiskIOSourceTest, AMappedBlockOutlivesItsTorrentAndTarget) {
    lt::storage_error error;
    lt::disk_buffer_holder b = read_holder(1, kBlock, kBlock, &error);
    ASSERT_FALSE(error.ec) << error.ec.message();
    ASSERT_EQ(io->mapped_read_bytes(), image.piece_size(1));
    // libtorrent may still be sending it when the job ends.
    holder.reset();
    target.reset();
    run_until([] { return false; }, 50ms);
    EXPECT_EQ(std::vector<char>(b.data(), b.data() + b.size()),
              std::vector<char>(image.at(1, kBlock), image.at(1, kBlock) + kBlock));
}

TEST_F(RawDiskIOSourceTest, ASourceThatShrankIsAReadErrorNotACrash) {
    ASSERT_EQ(::truncate(path.c_str(), 0), 0) << std::strerror(errno);
    lt::storage_error error;
    lt::disk_buffer_holder b = read_holder(1, 0, kBlock, &error);
    EXPECT_FALSE(b);
    EXPECT_EQ(error.ec, lt::error_code(EIO, lt::system_category())) << error.ec.message();
    EXPECT_EQ(error.operation, lt::operation_t::file_read);
    EXPECT_EQ(io->mapped_read_bytes(), 0);
    // The device's failure does not turn mapping off.
    const std::string disk = image_on_disk();
    std::ofstream(path, std::ios::binary)
        .write(disk.data(), static_cast<std::streamsize>(disk.size()));
    EXPECT_EQ(read_block(1, 0, kBlock), std::vector<char>(image.at(1, 0), image.at(1, 0) + kBlock));
    EXPECT_EQ(io->mapped_read_bytes(), image.piece_size(1));
}

TEST_F(RawDiskIOTest, ClearPieceThenRewriteHashesTheNewData) {
    int completed = 0;
    const auto junk = random_bytes(static_cast<std::size_t>(image.piece_size(0)), 5);
    for (int off = 0; off < image.piece_size(0); off += kBlock)
        write(0, off, kBlock, junk.data() + off, nullptr, &completed);
    io->submit_jobs();
    EXPECT_NE(hash(0), image.info->hash_for_piece(lt::piece_index_t{0}));
    bool cleared = false;
    io->async_clear_piece(storage, lt::piece_index_t{0},
                          [&](lt::piece_index_t) { cleared = true; });
    io->submit_jobs();
    ASSERT_TRUE(run_until([&] { return cleared; }));
    for (int off = 0; off < image.piece_size(0); off += kBlock)
        write(0, off, kBlock, image.at(0, off), nullptr, &completed);
    io->submit_jobs();
    EXPECT_EQ(hash(0), image.info->hash_for_piece(lt::piece_index_t{0}));
}

TEST_F(RawDiskIOTest, WriteErrorReachesEveryBlockOfTheRunAndTheHash) {
    // Writes past 0x40000 fail with EFBIG: piece 1 starts in the second
    // extent (device offset 0x40000 + ...), so its run fails as a whole.
    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit r = saved;
    r.rlim_cur = 0x40000;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &r), 0);
    int completed = 0;
    std::vector<lt::storage_error> errors;
    const int n = image.piece_size(1) / kBlock;
    for (int off = 0; off < image.piece_size(1); off += kBlock)
        write(1, off, kBlock, image.at(1, off), &errors, &completed);
    io->submit_jobs();
    lt::storage_error hash_error;
    hash(1, &hash_error);
    const bool all_done = run_until([&] { return completed == n; });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ASSERT_TRUE(all_done);
    ASSERT_EQ(static_cast<int>(errors.size()), n);
    int failed = 0;
    for (const auto& e : errors)
        failed += e.ec == lt::error_code(EFBIG, lt::system_category());
    EXPECT_GT(failed, 0);
    EXPECT_EQ(errors.back().ec, lt::error_code(EFBIG, lt::system_category()));
    EXPECT_EQ(errors.back().operation, lt::operation_t::file_write);
}

TEST_F(RawDiskIOTest, BackPressureIsReleasedOnceTheQueueDrains) {
    // At most 48 KiB queued: the fourth block of a run (held back to be
    // written together) exceeds it; once the run is written, libtorrent is
    // told to go on.
    settings.set_int(lt::settings_pack::max_queued_disk_bytes, 48 * 1024);
    io->settings_updated();
    auto obs = std::make_shared<Observer>();
    int completed = 0;
    std::vector<bool> exceeded;
    for (int off = 0; off < 4 * kBlock; off += kBlock)
        exceeded.push_back(write(0, off, kBlock, image.at(0, off), nullptr, &completed, obs));
    io->submit_jobs();
    EXPECT_EQ(exceeded, (std::vector<bool>{false, false, false, true}));
    ASSERT_TRUE(run_until([&] { return completed == 4 && obs->calls > 0; }));
    EXPECT_EQ(obs->calls, 1);
    EXPECT_EQ(io->queued_write_bytes(), 0);
}

TEST_F(RawDiskIOTest, StopCompletesAfterEveryWriteQueuedBeforeIt) {
    int completed = 0;
    int at_stop = -1;
    for (const auto& [p, off, len] : blocks())
        write(p, off, len, image.at(p, off), nullptr, &completed);
    io->async_stop_torrent(storage, [&] { at_stop = completed; });
    io->submit_jobs();
    ASSERT_TRUE(run_until([&] { return at_stop >= 0; }));
    EXPECT_EQ(at_stop, static_cast<int>(blocks().size()));
    EXPECT_EQ(io->queued_write_bytes(), 0);
    const auto [wrong_in, wrong_out] = wrong_bytes();
    EXPECT_EQ(wrong_in, 0u);
    EXPECT_EQ(wrong_out, 0u);
}

// Enough pieces for the hashing lanes: 48 pieces of 64 KiB over two extents.
class RawDiskIOManyPiecesTest : public RawDiskIOTest {
  protected:
    void SetUp() override {
        image = Image({{0x100000, 1 << 20}, {0x300000, 2 << 20}}, 0x600000);
        RawDiskIOTest::SetUp();
    }
    std::vector<lt::sha1_hash> hash_all(const std::vector<int>& pieces) {
        std::vector<lt::sha1_hash> out(static_cast<std::size_t>(image.pieces()));
        int done = 0;
        for (const int p : pieces)
            io->async_hash(storage, lt::piece_index_t{p}, {}, lt::disk_interface::v1_hash,
                           [&out, &done](lt::piece_index_t piece, const lt::sha1_hash& h,
                                         const lt::storage_error& e) {
                               EXPECT_FALSE(e.ec) << e.ec.message();
                               out[static_cast<std::size_t>(static_cast<int>(piece))] = h;
                               ++done;
                           });
        io->submit_jobs();
        EXPECT_TRUE(run_until([&] { return done == static_cast<int>(pieces.size()); }));
        return out;
    }
};

// Every piece written, and its hash asked for, in one go, as a fast peer
// does: the pieces are hashed side by side (where the CPU can), each hash
// completes with its piece's digest, and no job waits for another to come.
TEST_F(RawDiskIOManyPiecesTest, PiecesHashedSideBySideGetTheirOwnDigests) {
    ASSERT_EQ(image.pieces(), 48);
    int completed = 0;
    std::vector<int> all;
    for (int p = 0; p < image.pieces(); ++p) {
        for (int off = 0; off < image.piece_size(p); off += kBlock)
            write(p, off, kBlock, image.at(p, off), nullptr, &completed);
        all.push_back(p);
    }
    const auto digests = hash_all(all);
    for (int p = 0; p < image.pieces(); ++p)
        EXPECT_EQ(digests[static_cast<std::size_t>(p)],
                  image.info->hash_for_piece(lt::piece_index_t{p}))
            << "piece " << p;
    ASSERT_TRUE(run_until([&] { return completed == image.pieces() * kPiece / kBlock; }));
    if (ezio::sha1_lanes_fast())
        EXPECT_GT(io->lane_hashed_bytes(), 0);
    else
        std::cout << "this CPU has no AVX-512: pieces were hashed one by one\n";
    const auto [wrong_in, wrong_out] = wrong_bytes();
    EXPECT_EQ(wrong_in, 0u);
    EXPECT_EQ(wrong_out, 0u);
}

// Blocks of many pieces interleaved, some pieces left incomplete, others
// rewritten over what was queued: each digest is that of what the device
// holds when the hash was asked for.
TEST_F(RawDiskIOManyPiecesTest, InterleavedPartialAndRewrittenPiecesHashRight) {
    int completed = 0;
    const auto junk = random_bytes(static_cast<std::size_t>(kPiece), 9);
    // Pieces 0-31, block by block across the pieces; piece 5 gets junk first.
    for (int off = 0; off < kPiece; off += kBlock)
        for (int p = 0; p < 32; ++p)
            write(p, off, kBlock, p == 5 ? junk.data() + off : image.at(p, off), nullptr,
                  &completed);
    // Piece 5 again, the right bytes; piece 40 only half; piece 41 out of
    // order (a gap: its cursor stops, the hash reads the rest back).
    for (int off = 0; off < kPiece; off += kBlock)
        write(5, off, kBlock, image.at(5, off), nullptr, &completed);
    write(40, 0, kBlock, image.at(40, 0), nullptr, &completed);
    write(40, kBlock, kBlock, image.at(40, kBlock), nullptr, &completed);
    for (const int off : {2 * kBlock, 0, 3 * kBlock, kBlock})
        write(41, off, kBlock, image.at(41, off), nullptr, &completed);
    std::vector<int> asked;
    for (int p = 0; p < 32; ++p)
        asked.push_back(p);
    asked.push_back(40);
    asked.push_back(41);
    const auto digests = hash_all(asked);
    for (const int p : asked) {
        if (p == 40)
            continue;
        EXPECT_EQ(digests[static_cast<std::size_t>(p)],
                  image.info->hash_for_piece(lt::piece_index_t{p}))
            << "piece " << p;
    }
    // Piece 40's second half is still the pattern on the device.
    std::vector<char> half(image.at(40, 0), image.at(40, 0) + 2 * kBlock);
    half.resize(kPiece, kPattern);
    EXPECT_EQ(digests[40], lt::hasher(half.data(), kPiece).final());
    ASSERT_TRUE(run_until([&] { return completed == 32 * 4 + 4 + 2 + 4; }));
}

// A stop completes after the hashes queued before it, queued blocks or not.
TEST_F(RawDiskIOManyPiecesTest, StopCompletesAfterTheHashesQueuedBeforeIt) {
    int completed = 0;
    int hashed = 0;
    int at_stop = -1;
    for (int p = 0; p < 20; ++p) {
        for (int off = 0; off < kPiece; off += kBlock)
            write(p, off, kBlock, image.at(p, off), nullptr, &completed);
        io->async_hash(
            storage, lt::piece_index_t{p}, {}, lt::disk_interface::v1_hash,
            [&](lt::piece_index_t, const lt::sha1_hash&, const lt::storage_error&) { ++hashed; });
    }
    io->async_stop_torrent(storage, [&] { at_stop = hashed; });
    io->submit_jobs();
    ASSERT_TRUE(run_until([&] { return at_stop >= 0; }));
    EXPECT_EQ(at_stop, 20);
}

TEST_F(RawDiskIOTest, BadRequestsAreRefused) {
    int completed = 0;
    std::vector<lt::storage_error> errors;
    write(0, 0, kBlock + 1, image.at(0, 0), &errors, &completed);
    write(0, -1, 10, image.at(0, 0), &errors, &completed);
    ASSERT_TRUE(run_until([&] { return completed == 2; }));
    for (const auto& e : errors)
        EXPECT_EQ(e.ec, lt::error_code(EINVAL, lt::system_category()));
    const auto [wrong_in, wrong_out] = wrong_bytes();
    EXPECT_EQ(wrong_out, 0u);
}

// Any offset is a legal request: one that crosses a 1 MiB read-ahead chunk
// gets the right bytes, not the end of the chunk and what follows it.
TEST(RawDiskIOChunks, ARequestAcrossAReadChunkGetsItsOwnBytes) {
    constexpr int kBig = 2 << 20;  // one 2 MiB piece: two read chunks
    lt::file_storage files;
    files.add_file("sda1/" + hex_name(0), kBig);
    const auto data = random_bytes(kBig, 11);
    lt::create_torrent ct(files, kBig, lt::create_torrent::v1_only);
    ct.set_hash(lt::piece_index_t{0}, lt::hasher(data.data(), kBig).final());
    std::vector<char> bytes;
    lt::bencode(std::back_inserter(bytes), ct.generate());
    auto info = std::make_shared<lt::torrent_info>(bytes, lt::from_span);

    char tmpl[] = "/tmp/ezio-rawio-XXXXXX";
    const fs::path dir = ::mkdtemp(tmpl);
    const std::string path = (dir / "disk.img").string();
    std::ofstream(path, std::ios::binary).write(data.data(), kBig);
    lt::io_context ioc;
    lt::settings_pack settings;
    lt::aux::vector<lt::download_priority_t, lt::file_index_t> priorities;
    std::vector<std::vector<char>> got;
    {
        ezio::RawDiskIO io(ioc, settings, 1);
        auto target = ezio::Target::open(path, ezio::Target::Access::ReadWrite, true);
        io.bind(target, ezio::ImageLayout::from_files(info->files()));
        lt::storage_params params(info->files(), nullptr, target->path(), lt::storage_mode_sparse,
                                  priorities, info->info_hash());
        lt::storage_holder holder = io.new_torrent(params, info);
        // Across the boundary, twice (the second may share the first's
        // read), then an aligned block of the first chunk.
        const std::vector<int> starts{(1 << 20) - 8, (1 << 20) - 8, (1 << 20) - kBlock};
        for (int start : starts)
            io.async_read(static_cast<lt::storage_index_t>(holder),
                          lt::peer_request{lt::piece_index_t{0}, start, kBlock},
                          [&](lt::disk_buffer_holder b, const lt::storage_error& e) {
                              EXPECT_FALSE(e.ec) << e.ec.message();
                              got.emplace_back(b.data(), b.data() + b.size());
                          },
                          {});
        io.submit_jobs();
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (got.size() < starts.size() && std::chrono::steady_clock::now() < deadline) {
            ioc.restart();
            ioc.run_for(5ms);
        }
        ASSERT_EQ(got.size(), starts.size());
        for (std::size_t i = 0; i < starts.size(); ++i)
            EXPECT_EQ(got[i], std::vector<char>(data.begin() + starts[i],
                                                data.begin() + starts[i] + kBlock))
                << "request at " << starts[i];
    }
    fs::remove_all(dir);
}

}  // namespace
