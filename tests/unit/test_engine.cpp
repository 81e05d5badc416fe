// Engine end to end on regular files over 127.0.0.1: one seeder, two
// receivers, all in this process with their own sessions. Targets are
// pre-filled with a pattern that must survive outside the extents.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>

#include "engine.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

struct Extent {
    std::uint64_t offset;
    std::uint64_t length;
};

class Recorder : public ezio::EngineObserver {
  public:
    void job_added(const ezio::JobStatus& s) override { last[s.id] = s; }
    void job_changed(const ezio::JobStatus& s) override {
        last[s.id] = s;
        states[s.id].push_back(s.state);
    }
    void job_finished(const ezio::JobStatus& s, bool ok, const std::string& msg) override {
        last[s.id] = s;
        finished[s.id] = {ok, msg};
    }
    std::map<ezio::JobId, ezio::JobStatus> last;
    std::map<ezio::JobId, std::vector<ezio::JobState>> states;
    std::map<ezio::JobId, std::pair<bool, std::string>> finished;
};

using ezio::test::TempDir;

std::vector<char> read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void write_all(const fs::path& p, const std::vector<char>& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<char> random_bytes(std::size_t size, std::uint64_t seed) {
    std::vector<char> out(size);
    std::mt19937_64 rng(seed);
    for (auto& c : out)
        c = static_cast<char>(rng());
    return out;
}

// Bytes of `got` that differ from `image` inside the extents, and from
// `pattern` outside them.
std::pair<std::size_t, std::size_t> count_wrong(const std::vector<char>& got,
                                                const std::vector<char>& image,
                                                const std::vector<Extent>& extents, char pattern) {
    std::vector<bool> covered(image.size(), false);
    for (const auto& e : extents)
        for (std::uint64_t i = e.offset; i < e.offset + e.length; ++i)
            covered[i] = true;
    std::size_t inside = 0, outside = 0;
    for (std::size_t i = 0; i < image.size() && i < got.size(); ++i) {
        if (covered[i] && got[i] != image[i])
            ++inside;
        if (!covered[i] && got[i] != pattern)
            ++outside;
    }
    return {inside, outside};
}

// Writes each extent of `image` as a file named by its hex offset and
// builds a torrent over them with libtorrent's own create_torrent.
std::vector<char> make_torrent(const fs::path& dir, const std::vector<char>& image,
                               const std::vector<Extent>& extents, int piece_size, bool v1_only) {
    fs::create_directories(dir / "sda1");
    for (const auto& e : extents) {
        char name[40];
        std::snprintf(name, sizeof name, "%032llx", static_cast<unsigned long long>(e.offset));
        write_all(dir / "sda1" / name,
                  std::vector<char>(image.begin() + static_cast<long>(e.offset),
                                    image.begin() + static_cast<long>(e.offset + e.length)));
    }
    lt::file_storage files;
    lt::add_files(files, (dir / "sda1").string());
    lt::create_torrent ct(files, piece_size,
                          v1_only ? lt::create_torrent::v1_only : lt::create_flags_t{});
    lt::set_piece_hashes(ct, dir.string());
    std::vector<char> out;
    lt::bencode(std::back_inserter(out), ct.generate());
    return out;
}

void run_until(std::vector<ezio::Engine*> engines, const std::function<bool()>& done,
               std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
        std::vector<pollfd> fds;
        int timeout = 100;
        for (auto* e : engines) {
            fds.push_back({e->event_fd(), POLLIN, 0});
            timeout = std::min<int>(timeout, static_cast<int>(e->next_timeout().count()));
        }
        ::poll(fds.data(), fds.size(), timeout);
        for (auto* e : engines)
            e->process();
    }
}

ezio::EngineConfig lan_config() {
    ezio::EngineConfig c;
    c.listen_interface = "127.0.0.1";
    c.listen_port = 0;
    c.local_discovery = false;
    c.io_threads = 2;
    return c;
}

class EngineSwarm : public ::testing::TestWithParam<bool> {};

TEST_P(EngineSwarm, OneSeederTwoReceiversWriteEveryExtentAndNothingElse) {
    const bool v1_only = GetParam();
    TempDir tmp;
    constexpr std::size_t kSize = 6 << 20;
    const std::vector<char> image = random_bytes(kSize, 42);
    // Uneven extents, unaligned offsets, a 1-byte extent.
    const std::vector<Extent> extents{
        {0, 65536}, {0x100000, 300000}, {0x300123, 1}, {0x400000, 2 << 20}};
    auto torrent = make_torrent(tmp.path / "t", image, extents, 32768, v1_only);

    write_all(tmp.path / "source.img", image);
    const std::vector<char> pattern(kSize, static_cast<char>(0xA5));
    write_all(tmp.path / "a.img", pattern);
    write_all(tmp.path / "b.img", pattern);

    Recorder rs, ra, rb;
    ezio::Engine seeder(lan_config(), &rs), ea(lan_config(), &ra), eb(lan_config(), &rb);
    ezio::JobOptions seed_opts;
    seeder.seed(torrent, (tmp.path / "source.img").string(), seed_opts);
    run_until(
        {&seeder}, [&] { return seeder.listen_port() > 0; }, std::chrono::seconds(5));
    ASSERT_GT(seeder.listen_port(), 0);

    ezio::JobOptions opts;
    opts.peers = {"127.0.0.1:" + std::to_string(seeder.listen_port())};
    opts.verify = true;
    const auto ja = ea.deploy(torrent, (tmp.path / "a.img").string(), opts, true);
    const auto jb = eb.deploy(torrent, (tmp.path / "b.img").string(), opts, true);

    run_until(
        {&seeder, &ea, &eb}, [&] { return ra.finished.count(ja) && rb.finished.count(jb); },
        std::chrono::seconds(60));
    ASSERT_TRUE(ra.finished.count(ja)) << "receiver A did not finish";
    ASSERT_TRUE(rb.finished.count(jb)) << "receiver B did not finish";
    EXPECT_TRUE(ra.finished[ja].first) << ra.finished[ja].second;
    EXPECT_TRUE(rb.finished[jb].first) << rb.finished[jb].second;
    EXPECT_EQ(ea.status(ja)->state, ezio::JobState::Completed);
    EXPECT_EQ(ea.status(ja)->bytes_done, ea.status(ja)->bytes_total);

    for (const char* name : {"a.img", "b.img"}) {
        auto got = read_all(tmp.path / name);
        ASSERT_EQ(got.size(), kSize);
        const auto [wrong_inside, wrong_outside] =
            count_wrong(got, image, extents, static_cast<char>(0xA5));
        EXPECT_EQ(wrong_inside, 0u) << name << ": bytes of the image differ from the source";
        EXPECT_EQ(wrong_outside, 0u) << name << ": bytes outside the extents were touched";
    }
}

INSTANTIATE_TEST_SUITE_P(Torrents, EngineSwarm, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "V1" : "Hybrid"; });

// Jobs of one image in one Engine run side by side, each in its own lane
// (libtorrent session), and feed each other: two deploys given no peer at
// all complete from the seed job beside them. Cancelling a third leaves the
// others running; a target is still written by one job only.
TEST(Engine, JobsOfOneImageRunSideBySideAndFeedEachOther) {
    TempDir tmp;
    constexpr std::size_t kSize = 4 << 20;
    const std::vector<char> image = random_bytes(kSize, 7);
    const std::vector<Extent> extents{{0, 1 << 20}, {0x200000, 3 << 19}};
    auto torrent = make_torrent(tmp.path / "t", image, extents, 32768, true);
    write_all(tmp.path / "source.img", image);
    const std::vector<char> pattern(kSize, static_cast<char>(0x5A));
    for (const char* name : {"a.img", "b.img", "c.img"})
        write_all(tmp.path / name, pattern);

    Recorder r;
    ezio::Engine e(lan_config(), &r);
    const auto seed = e.seed(torrent, (tmp.path / "source.img").string(), {});
    ezio::JobOptions opts;
    opts.verify = true;
    const auto ja = e.deploy(torrent, (tmp.path / "a.img").string(), opts, true);
    const auto jb = e.deploy(torrent, (tmp.path / "b.img").string(), opts, true);
    // One target, one writer, whatever the image.
    EXPECT_THROW(e.deploy(torrent, (tmp.path / "a.img").string(), opts, true), ezio::Error);
    const auto jc = e.deploy(torrent, (tmp.path / "c.img").string(), opts, true);
    e.cancel(jc);
    EXPECT_EQ(e.status(jc)->state, ezio::JobState::Cancelled);

    run_until(
        {&e}, [&] { return r.finished.count(ja) && r.finished.count(jb); },
        std::chrono::seconds(60));
    ASSERT_TRUE(r.finished.count(ja)) << "deploy A did not finish";
    ASSERT_TRUE(r.finished.count(jb)) << "deploy B did not finish";
    EXPECT_TRUE(r.finished[ja].first) << r.finished[ja].second;
    EXPECT_TRUE(r.finished[jb].first) << r.finished[jb].second;
    EXPECT_EQ(e.status(seed)->state, ezio::JobState::Seeding);
    for (const char* name : {"a.img", "b.img"}) {
        auto got = read_all(tmp.path / name);
        ASSERT_EQ(got.size(), kSize);
        const auto [inside, outside] = count_wrong(got, image, extents, 0x5A);
        EXPECT_EQ(inside, 0u) << name << ": bytes of the image differ from the source";
        EXPECT_EQ(outside, 0u) << name << ": bytes outside the extents were touched";
    }
    // The cancelled job's target is as it was, or holds image bytes only.
    EXPECT_EQ(read_all(tmp.path / "c.img").size(), kSize);
}

TEST(Engine, RefusesBadInputBeforeWritingAnything) {
    TempDir tmp;
    Recorder r;
    ezio::Engine e(lan_config(), &r);
    std::vector<char> image(1 << 20, 'x');
    auto torrent = make_torrent(tmp.path / "t", image, {{0, 1 << 20}}, 32768, true);
    const std::string garbage = "d4:spam";
    auto code = [&](auto fn) {
        try {
            fn();
        } catch (const ezio::Error& err) {
            return err.code();
        }
        return ezio::Errc::Failed;
    };
    ezio::JobOptions none;
    EXPECT_EQ(code([&] { e.deploy(garbage, (tmp.path / "x").string(), none, true); }),
              ezio::Errc::InvalidTorrent);
    EXPECT_EQ(code([&] { e.deploy(torrent, "/nonexistent/dir/x", none, false); }),
              ezio::Errc::InvalidTarget);
    // A regular file is refused unless the caller says it is meant.
    write_all(tmp.path / "small.img", std::vector<char>(100, 'a'));
    EXPECT_EQ(code([&] { e.deploy(torrent, (tmp.path / "small.img").string(), none, false); }),
              ezio::Errc::InvalidTarget);
    ezio::JobOptions bad_peer;
    bad_peer.peers = {"127.0.0.1"};
    EXPECT_EQ(code([&] { e.deploy(torrent, (tmp.path / "y").string(), bad_peer, true); }),
              ezio::Errc::InvalidArgs);
    EXPECT_TRUE(e.jobs().empty());
    EXPECT_FALSE(fs::exists(tmp.path / "y")) << "a refused deploy created its target";
    EXPECT_EQ(read_all(tmp.path / "small.img"), std::vector<char>(100, 'a'));
    EXPECT_EQ(code([&] { e.pause(99); }), ezio::Errc::NotFound);
}

TEST(Engine, CancelStopsAJobAndKeepsItsRecord) {
    TempDir tmp;
    Recorder r;
    ezio::Engine e(lan_config(), &r);
    std::vector<char> image(1 << 20, 'x');
    auto torrent = make_torrent(tmp.path / "t", image, {{0, 1 << 20}}, 32768, true);
    ezio::JobOptions none;
    const auto id = e.deploy(torrent, (tmp.path / "out.img").string(), none, true);
    e.pause(id);
    EXPECT_EQ(e.status(id)->state, ezio::JobState::Paused);
    e.resume(id);
    e.cancel(id);
    EXPECT_EQ(e.status(id)->state, ezio::JobState::Cancelled);
    EXPECT_TRUE(r.finished.count(id));
    EXPECT_FALSE(r.finished[id].first);
    EXPECT_THROW(e.pause(id), ezio::Error);
    e.remove(id);
    EXPECT_FALSE(e.status(id));
}

}  // namespace

namespace {

// A target whose writes start failing part-way must fail its job with the
// cause, never report it completed.
TEST(Engine, WriteErrorFailsTheJobWithTheCause) {
    TempDir tmp;
    constexpr std::size_t kSize = 4 << 20;
    const std::vector<char> image = random_bytes(kSize, 7);
    auto torrent = make_torrent(tmp.path / "t", image, {{0, kSize}}, 65536, true);
    write_all(tmp.path / "source.img", image);
    write_all(tmp.path / "target.img", std::vector<char>(kSize, 0));

    Recorder rs, rr;
    ezio::Engine seeder(lan_config(), &rs), receiver(lan_config(), &rr);
    seeder.seed(torrent, (tmp.path / "source.img").string(), {});
    run_until(
        {&seeder}, [&] { return seeder.listen_port() > 0; }, std::chrono::seconds(5));
    ezio::JobOptions opts;
    opts.peers = {"127.0.0.1:" + std::to_string(seeder.listen_port())};

    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    auto old = ::signal(SIGXFSZ, SIG_IGN);
    rlimit r = saved;
    r.rlim_cur = 1 << 20;  // writes beyond 1 MiB fail with EFBIG
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &r), 0);
    const auto id = receiver.deploy(torrent, (tmp.path / "target.img").string(), opts, true);
    run_until(
        {&seeder, &receiver}, [&] { return rr.finished.count(id) > 0; }, std::chrono::seconds(30));
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old);

    ASSERT_TRUE(rr.finished.count(id)) << "the job neither failed nor completed";
    EXPECT_FALSE(rr.finished[id].first);
    auto st = receiver.status(id);
    EXPECT_EQ(st->state, ezio::JobState::Failed);
    EXPECT_EQ(st->error_code, ezio::Errc::IoError);
    EXPECT_NE(st->last_error.find("target.img"), std::string::npos) << st->last_error;
    EXPECT_NE(st->last_error.find("too large"), std::string::npos) << st->last_error;
}

}  // namespace

namespace {

// A receiver stopped mid-deploy comes back from its state directory under the
// same job id, keeps the pieces it had written, and finishes the image.
TEST(Engine, ResumesAfterRestartWithoutRefetchingDurablePieces) {
    TempDir tmp;
    constexpr std::size_t kSize = 8 << 20;
    const std::vector<char> image = random_bytes(kSize, 99);
    auto torrent = make_torrent(tmp.path / "t", image, {{0, kSize}}, 65536, true);
    write_all(tmp.path / "source.img", image);
    const auto target = (tmp.path / "target.img").string();

    Recorder rs;
    ezio::Engine seeder(lan_config(), &rs);
    ezio::JobOptions slow;
    slow.max_upload_rate = 2 << 20;  // 2 MiB/s: the first run cannot finish in time
    const auto seed_job = seeder.seed(torrent, (tmp.path / "source.img").string(), slow);
    run_until(
        {&seeder}, [&] { return seeder.listen_port() > 0; }, std::chrono::seconds(5));

    auto config = lan_config();
    config.state_dir = (tmp.path / "state").string();
    config.resume_save_interval = 1;
    ezio::JobOptions opts;
    opts.peers = {"127.0.0.1:" + std::to_string(seeder.listen_port())};
    ezio::JobId id;
    std::uint64_t done_before = 0;
    {
        Recorder r1;
        ezio::Engine first(config, &r1);
        id = first.deploy(torrent, target, opts, true);
        run_until(
            {&seeder, &first}, [&] { return r1.last[id].bytes_done >= kSize / 4; },
            std::chrono::seconds(30));
        done_before = r1.last[id].bytes_done;
        ASSERT_GE(done_before, kSize / 4);
        ASSERT_LT(done_before, kSize) << "finished before the restart could be tested";
        first.shutdown();
    }
    ASSERT_TRUE(fs::exists(tmp.path / "state/jobs" / std::to_string(id) / "resume"));

    seeder.pause(seed_job);  // nothing can be fetched until we look
    Recorder r2;
    ezio::Engine second(config, &r2);
    auto restored = second.restore();
    ASSERT_EQ(restored, std::vector<ezio::JobId>{id});
    run_until(
        {&seeder, &second}, [&] { return r2.last[id].bytes_done > 0; }, std::chrono::seconds(10));
    EXPECT_GE(r2.last[id].bytes_done, done_before * 3 / 4)
        << "pieces written before the restart were not kept";

    seeder.resume(seed_job);
    run_until(
        {&seeder, &second}, [&] { return r2.finished.count(id) > 0; }, std::chrono::seconds(60));
    ASSERT_TRUE(r2.finished.count(id));
    EXPECT_TRUE(r2.finished[id].first) << r2.finished[id].second;
    EXPECT_EQ(read_all(target), image);
    EXPECT_FALSE(fs::exists(tmp.path / "state/jobs" / std::to_string(id)))
        << "a completed job left its state behind";
}

}  // namespace
