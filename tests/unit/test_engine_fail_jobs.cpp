// Engine::fail_jobs_on: a device that went away fails the jobs on it, and
// only those.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>

#include "engine.hpp"

namespace fs = std::filesystem;

namespace {

class Finished : public ezio::EngineObserver {
  public:
    void job_added(const ezio::JobStatus&) override {}
    void job_changed(const ezio::JobStatus&) override {}
    void job_finished(const ezio::JobStatus& s, bool ok, const std::string& msg) override {
        finished[s.id] = {ok, msg};
    }
    std::map<ezio::JobId, std::pair<bool, std::string>> finished;
};

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/ezio-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    fs::path path;
};

// One extent at offset 0 holding `fill`, as a torrent (different fills give
// different info-hashes).
std::vector<char> torrent_of(const fs::path& dir, char fill) {
    fs::create_directories(dir / "sda1");
    {
        std::ofstream out(dir / "sda1" / std::string(32, '0'), std::ios::binary);
        const std::string data(1 << 20, fill);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }
    lt::file_storage files;
    lt::add_files(files, (dir / "sda1").string());
    lt::create_torrent ct(files, 32768, lt::create_torrent::v1_only);
    lt::set_piece_hashes(ct, dir.string());
    std::vector<char> out;
    lt::bencode(std::back_inserter(out), ct.generate());
    return out;
}

ezio::EngineConfig quiet_config() {
    ezio::EngineConfig c;
    c.listen_interface = "127.0.0.1";
    c.listen_port = 0;
    c.local_discovery = false;
    c.io_threads = 1;
    return c;
}

TEST(EngineFailJobsOn, FailsOnlyTheJobsOnThatTarget) {
    TempDir tmp;
    Finished r;
    ezio::Engine e(quiet_config(), &r);
    const ezio::JobOptions none;
    const std::string gone = (tmp.path / "gone.img").string();
    const std::string kept = (tmp.path / "kept.img").string();
    // No peers: both jobs wait for data until something happens to them.
    const auto a = e.deploy(torrent_of(tmp.path / "a", 'a'), gone, none, true);
    const auto b = e.deploy(torrent_of(tmp.path / "b", 'b'), kept, none, true);

    EXPECT_TRUE(e.fail_jobs_on(tmp.path / "nothing-here", "x").empty());
    const auto failed = e.fail_jobs_on(gone, gone + " went away");
    ASSERT_EQ(failed, std::vector<ezio::JobId>{a});

    const auto sa = e.status(a);
    ASSERT_TRUE(sa);
    EXPECT_EQ(sa->state, ezio::JobState::Failed);
    EXPECT_EQ(sa->error_code, ezio::Errc::IoError);
    EXPECT_EQ(sa->last_error, gone + " went away");
    ASSERT_TRUE(r.finished.count(a));
    EXPECT_FALSE(r.finished[a].first);
    EXPECT_EQ(r.finished[a].second, gone + " went away");

    EXPECT_FALSE(ezio::is_final(e.status(b)->state));
    EXPECT_FALSE(r.finished.count(b));
    // A final job is not failed again.
    EXPECT_TRUE(e.fail_jobs_on(gone, "again").empty());
    EXPECT_EQ(e.status(a)->last_error, gone + " went away");
    // The target is free for a new job once the failed one let go of it.
    const auto c = e.deploy(torrent_of(tmp.path / "c", 'c'), gone, none, true);
    EXPECT_FALSE(ezio::is_final(e.status(c)->state));
    e.cancel(b);
    e.cancel(c);
}

}  // namespace
