// read_mapped_guarded (sigbus_guard.hpp): a read of a mapped page past the
// end of its file comes back as failure, more than once; a handler that
// replaced the guard's is replaced in turn and still gets the faults that are
// not the guard's; a fault outside any guard still kills the process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csetjmp>
#include <csignal>
#include <cstring>
#include <string>

#include "sigbus_guard.hpp"
#include "temp_dir.hpp"

namespace {

// A file of one page holding 'x', mapped over four pages: reading the
// second page onwards raises SIGBUS.
class SigbusGuard : public ::testing::Test {
  protected:
    void SetUp() override {
        page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        const std::string path = (dir_.path / "short").string();
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(fd_, 0) << std::strerror(errno);
        const std::string data(page_, 'x');
        ASSERT_EQ(::write(fd_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
        map_ = ::mmap(nullptr, 4 * page_, PROT_READ, MAP_SHARED, fd_, 0);
        ASSERT_NE(map_, MAP_FAILED) << std::strerror(errno);
    }
    void TearDown() override {
        if (map_ != MAP_FAILED) {
            EXPECT_EQ(::munmap(map_, 4 * page_), 0);
        }
        if (fd_ >= 0)
            ::close(fd_);
    }
    const char* at(std::size_t page) const { return static_cast<const char*>(map_) + page * page_; }

    struct Read {
        const char* p;
        char seen;
    };
    static void read_byte(void* arg) {
        auto* r = static_cast<Read*>(arg);
        r->seen = *static_cast<const volatile char*>(r->p);
    }
    bool guarded_read(const char* p, char* seen = nullptr) {
        Read r{p, 0};
        const bool ok = ezio::read_mapped_guarded(at(0), 4 * page_, read_byte, &r);
        if (seen)
            *seen = r.seen;
        return ok;
    }

    ezio::test::TempDir dir_;
    std::size_t page_ = 0;
    int fd_ = -1;
    void* map_ = MAP_FAILED;
};

TEST_F(SigbusGuard, FaultInTheGuardedRangeIsReportedEveryTime) {
    char seen = 0;
    EXPECT_TRUE(guarded_read(at(0), &seen));
    EXPECT_EQ(seen, 'x');
    // SIGBUS must be unblocked again after the first jump for the second to
    // be caught at all.
    EXPECT_FALSE(guarded_read(at(1)));
    EXPECT_FALSE(guarded_read(at(3) + 17));
    EXPECT_TRUE(guarded_read(at(0) + 5, &seen));
    EXPECT_EQ(seen, 'x');
}

// A foreign handler of the kind libtorrent installs: it jumps when armed.
sigjmp_buf g_foreign_env;
volatile sig_atomic_t g_foreign_armed = 0;
void foreign_handler(int, siginfo_t*, void*) {
    if (g_foreign_armed)
        siglongjmp(g_foreign_env, 1);
    std::signal(SIGBUS, SIG_DFL);
}

TEST_F(SigbusGuard, ReplacedHandlerIsReplacedAgainAndChainedTo) {
    struct sigaction before {};
    ASSERT_EQ(::sigaction(SIGBUS, nullptr, &before), 0);
    EXPECT_FALSE(guarded_read(at(1)));

    struct sigaction foreign {};
    foreign.sa_sigaction = foreign_handler;
    foreign.sa_flags = SA_SIGINFO;
    sigemptyset(&foreign.sa_mask);
    ASSERT_EQ(::sigaction(SIGBUS, &foreign, nullptr), 0);

    // The guard puts its handler back: without that this read would reach
    // the foreign handler unarmed and kill the test.
    EXPECT_FALSE(guarded_read(at(2)));

    // A fault outside any guard goes on to the handler that was there.
    bool chained = false;
    if (sigsetjmp(g_foreign_env, 1) == 0) {
        g_foreign_armed = 1;
        (void)*static_cast<const volatile char*>(at(3));
    } else {
        chained = true;
    }
    g_foreign_armed = 0;
    EXPECT_TRUE(chained);

    ASSERT_EQ(::sigaction(SIGBUS, &before, nullptr), 0);
}

TEST_F(SigbusGuard, FaultOutsideAnyGuardStillKills) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_FALSE(guarded_read(at(1)));  // the guard's handler is installed
    // Killed by SIGBUS; under AddressSanitizer, whose handler was there
    // first, its report and exit code 1.
    EXPECT_DEATH((void)*static_cast<const volatile char*>(at(2)), "");
}

}  // namespace
