// Target: positional I/O that loops on short transfers and reports every
// errno. Short writes are forced with RLIMIT_FSIZE: a write that crosses the
// limit is cut short, the next one fails with EFBIG.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "error.hpp"
#include "target.hpp"

namespace fs = std::filesystem;

namespace {

class FileSizeLimit {
  public:
    explicit FileSizeLimit(rlim_t limit) {
        ::getrlimit(RLIMIT_FSIZE, &saved_);
        old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
        rlimit r = saved_;
        r.rlim_cur = limit;
        EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &r), 0);
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &saved_);
        ::signal(SIGXFSZ, old_handler_);
    }

  private:
    rlimit saved_{};
    sighandler_t old_handler_;
};

fs::path temp_file(const char* name) {
    auto p = fs::temp_directory_path() /
             (std::string("ezio-target-") + std::to_string(::getpid()) + name);
    fs::remove(p);
    return p;
}

TEST(Target, WritesAndReadsAtOffsets) {
    auto p = temp_file("rw");
    auto t = ezio::Target::open(p.string(), ezio::Target::Access::ReadWrite, true);
    ASSERT_EQ(t->ensure_size(1 << 20), 0);
    EXPECT_EQ(t->size(), 1u << 20);
    const std::string data = "hello, partition";
    ASSERT_EQ(t->write_at(data.data(), data.size(), 4096), 0);
    ASSERT_EQ(t->flush(), 0);
    std::string back(data.size(), '\0');
    ASSERT_EQ(t->read_at(back.data(), back.size(), 4096), 0);
    EXPECT_EQ(back, data);
    fs::remove(p);
}

TEST(Target, LongWritesStartWriteBackOnTheWay) {
    // More than Target::kWritebackBytes, so write_at starts write-back
    // (sync_file_range) at least once; the data and the flush are unaffected.
    auto p = temp_file("wb");
    auto t = ezio::Target::open(p.string(), ezio::Target::Access::ReadWrite, true);
    const std::size_t chunk = 1 << 20;
    const std::size_t chunks = ezio::Target::kWritebackBytes / chunk + 2;
    std::string data(chunk, '\0');
    for (std::size_t i = 0; i < chunks; ++i) {
        std::memset(data.data(), static_cast<int>('a' + i % 26), chunk);
        ASSERT_EQ(t->write_at(data.data(), chunk, i * chunk), 0) << "chunk " << i;
    }
    ASSERT_EQ(t->flush(), 0);
    std::string back(chunk, '\0');
    for (std::size_t i : {std::size_t{0}, chunks / 2, chunks - 1}) {
        ASSERT_EQ(t->read_at(back.data(), chunk, i * chunk), 0);
        EXPECT_EQ(back, std::string(chunk, static_cast<char>('a' + i % 26))) << "chunk " << i;
    }
    t.reset();
    fs::remove(p);
}

TEST(Target, ShortWriteIsContinuedThenItsErrorReported) {
    auto p = temp_file("short");
    auto t = ezio::Target::open(p.string(), ezio::Target::Access::ReadWrite, true);
    std::vector<char> block(16384, 'z');
    int err;
    {
        FileSizeLimit limit(8192 + 1000);
        // pwrite writes 1000 bytes (short), the retry fails with EFBIG.
        err = t->write_at(block.data(), block.size(), 8192);
    }
    EXPECT_EQ(err, EFBIG);
    EXPECT_EQ(fs::file_size(p), 8192u + 1000u)
        << "the short write was not continued up to the limit";
    fs::remove(p);
}

TEST(Target, ReadPastTheEndIsAnError) {
    auto p = temp_file("eof");
    { std::ofstream(p) << "0123456789"; }
    auto t = ezio::Target::open(p.string(), ezio::Target::Access::ReadOnly, true);
    char buf[20];
    EXPECT_EQ(t->read_at(buf, 20, 0), EIO);
    EXPECT_EQ(t->read_at(buf, 10, 0), 0);
    fs::remove(p);
}

TEST(Target, RefusesWhatIsNotATarget) {
    auto code = [](const std::string& path, bool allow_file) {
        try {
            ezio::Target::open(path, ezio::Target::Access::ReadWrite, allow_file);
        } catch (const ezio::Error& e) {
            return e.code();
        }
        return ezio::Errc::Failed;
    };
    EXPECT_EQ(code("/nonexistent/x", true), ezio::Errc::InvalidTarget);
    EXPECT_EQ(code("/tmp", true), ezio::Errc::InvalidTarget);       // a directory
    EXPECT_EQ(code("/dev/null", true), ezio::Errc::InvalidTarget);  // a character device
    auto p = temp_file("plain");
    { std::ofstream(p) << "x"; }
    EXPECT_EQ(code(p.string(), false), ezio::Errc::InvalidTarget);  // a file, not asked for
    fs::remove(p);
}

}  // namespace
