// Disk discovery, target safety, the whole-disk lock and the monitor on loop
// devices these tests attach themselves (root only; skipped otherwise).
//
// Every loop device is attached with LO_FLAGS_AUTOCLEAR while the test holds
// it open, so the kernel detaches it when the test process lets go of it —
// even if the test crashes. No other device is ever opened for writing; the
// only real disk touched is the one holding "/", and only through
// check_target(), which refuses it before opening anything.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <libtorrent/hasher.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "disk_info.hpp"
#include "disk_lock.hpp"
#include "disk_monitor.hpp"
#include "disk_usage.hpp"
#include "error.hpp"
#include "target.hpp"
#include "target_safety.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

#define REQUIRE_ROOT()                                                           \
    do {                                                                         \
        if (::geteuid() != 0)                                                    \
            GTEST_SKIP() << "needs root: attaches loop devices, mounts, swapon"; \
        if (::access("/dev/loop-control", W_OK) != 0)                            \
            GTEST_SKIP() << "no /dev/loop-control: " << std::strerror(errno);    \
    } while (0)

// Removed at exit; backing files go with it.
fs::path scratch_dir() {
    struct Dir {
        fs::path path;
        Dir() {
            std::string tmpl = (fs::temp_directory_path() / "ezio-disk-test.XXXXXX").string();
            if (!::mkdtemp(tmpl.data()))
                throw std::runtime_error("mkdtemp failed");
            path = tmpl;
        }
        ~Dir() {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    };
    static const Dir dir;
    return dir.path;
}

struct LoopOptions {
    std::uint64_t size = 8 * MiB;
    bool read_only = false;
    bool partition_table = false;  // one MBR partition from 1 MiB to the end
    unsigned char fill = 0xa5;
};

// A loop device over a private backing file; detached when destroyed (or
// when the process dies: autoclear).
class TestLoop {
  public:
    explicit TestLoop(const LoopOptions& o = {}) {
        static int counter = 0;
        backing_ = scratch_dir() / ("disk" + std::to_string(++counter));
        {
            const int bf = ::open(backing_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (bf < 0)
                throw std::runtime_error("backing file: " + std::string(std::strerror(errno)));
            std::string chunk(MiB, static_cast<char>(o.fill));
            for (std::uint64_t off = 0; off < o.size; off += chunk.size())
                if (::pwrite(bf, chunk.data(), std::min<std::uint64_t>(chunk.size(), o.size - off),
                             off) < 0)
                    throw std::runtime_error("backing file write failed");
            if (o.partition_table) {
                unsigned char mbr[512] = {};
                unsigned char* e = mbr + 446;
                e[4] = 0x83;
                const std::uint32_t start = 2048, count = (o.size / 512) - 2048;
                std::memcpy(e + 8, &start, 4);  // little-endian host
                std::memcpy(e + 12, &count, 4);
                mbr[510] = 0x55;
                mbr[511] = 0xaa;
                if (::pwrite(bf, mbr, sizeof mbr, 0) != 512)
                    throw std::runtime_error("MBR write failed");
            }
            ::close(bf);
        }
        const int backing = ::open(backing_.c_str(), (o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        const int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (backing < 0 || ctl < 0)
            throw std::runtime_error("open failed: " + std::string(std::strerror(errno)));
        for (int attempt = 0; attempt < 50 && fd_ < 0; ++attempt) {
            const int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
            if (n < 0)
                break;
            const std::string node = "/dev/loop" + std::to_string(n);
            const int fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
            if (fd < 0)
                continue;
            loop_config cfg{};
            cfg.fd = static_cast<__u32>(backing);
            cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (o.read_only ? LO_FLAGS_READ_ONLY : 0) |
                                (o.partition_table ? LO_FLAGS_PARTSCAN : 0);
            if (::ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
                fd_ = fd;
                node_ = node;
                name_ = "loop" + std::to_string(n);
            } else {
                ::close(fd);  // raced with another user of the same number
            }
        }
        ::close(ctl);
        ::close(backing);
        if (fd_ < 0)
            throw std::runtime_error("cannot attach a loop device");
        if (o.partition_table) {
            // The kernel reads the MBR at LOOP_CONFIGURE, if it was built
            // with MSDOS partition support; some (e.g. microVM) kernels are
            // not. Then the partition is added the way partx does (BLKPG).
            if (::access(("/sys/class/block/" + partition_name()).c_str(), F_OK) != 0) {
                blkpg_partition part{};
                part.start = MiB;
                part.length = o.size - MiB;
                part.pno = 1;
                blkpg_ioctl_arg arg{};
                arg.op = BLKPG_ADD_PARTITION;
                arg.datalen = sizeof part;
                arg.data = &part;
                if (::ioctl(fd_, BLKPG, &arg) != 0)
                    throw std::runtime_error("BLKPG_ADD_PARTITION on " + node_ + ": " +
                                             std::strerror(errno));
            }
            // devtmpfs makes the node; wait for it.
            for (int i = 0; i < 100 && ::access(partition_node().c_str(), F_OK) != 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    ~TestLoop() { detach(); }
    const fs::path& backing() const { return backing_; }
    TestLoop(const TestLoop&) = delete;
    TestLoop& operator=(const TestLoop&) = delete;

    void detach() {
        if (fd_ < 0)
            return;
        ::ioctl(fd_, LOOP_CLR_FD);  // deferred while other openers remain
        ::close(fd_);
        fd_ = -1;
        fs::remove(backing_);
    }
    // Detaches, then attaches the same backing file again under the same
    // name: a new medium for the kernel (a new DISKSEQ), like a disk swapped
    // in its bay. The kernel detaches on the last close, so the device is
    // let go of for a moment; returns false if another process took the
    // free loop device in that moment (it is then not ours to touch).
    bool reattach() {
        ::ioctl(fd_, LOOP_CLR_FD);
        ::close(fd_);
        fd_ = -1;
        const std::string size_attr = "/sys/class/block/" + name_ + "/size";
        for (int i = 0; i < 500; ++i) {
            std::string size;
            std::ifstream(size_attr) >> size;
            if (size == "0")
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        const int fd = ::open(node_.c_str(), O_RDWR | O_CLOEXEC);
        const int backing = ::open(backing_.c_str(), O_RDWR | O_CLOEXEC);
        loop_config cfg{};
        cfg.fd = static_cast<__u32>(backing);
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        const bool ok = fd >= 0 && backing >= 0 && ::ioctl(fd, LOOP_CONFIGURE, &cfg) == 0;
        if (backing >= 0)
            ::close(backing);
        if (ok)
            fd_ = fd;
        else if (fd >= 0)
            ::close(fd);
        return ok;
    }
    const std::string& node() const { return node_; }
    const std::string& name() const { return name_; }
    std::string partition_node() const { return node_ + "p1"; }
    std::string partition_name() const { return name_ + "p1"; }

  private:
    fs::path backing_;
    int fd_ = -1;
    std::string node_, name_;
};

class TestMount {
  public:
    TestMount(const std::string& node, const char* type = "ext4") {
        dir_ = scratch_dir() / ("mnt-" + fs::path(node).filename().string());
        fs::create_directories(dir_);
        if (::mount(node.c_str(), dir_.c_str(), type, 0, nullptr) != 0)
            throw std::runtime_error("mount " + node + ": " + std::strerror(errno));
        ::sync();
    }
    ~TestMount() {
        ::umount2(dir_.c_str(), 0);
        fs::remove(dir_);
    }
    const fs::path& dir() const { return dir_; }

  private:
    fs::path dir_;
};

void make_ext4(const std::string& node) {
    // No lazy init: the kernel would otherwise zero inode tables in the
    // background after mount, changing the device under the checksum.
    const std::string cmd =
        "mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 " + node + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

std::string sha256_of(const std::string& node) {
    const int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "open failed: " + std::string(std::strerror(errno));
    lt::hasher256 h;
    std::vector<char> buf(MiB);
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            ::close(fd);
            return "read failed";
        }
        if (n == 0)
            break;
        h.update(buf.data(), static_cast<int>(n));
    }
    ::close(fd);
    std::ostringstream out;
    out << h.final();
    return out.str();
}

// Runs check_target and returns the error code (nullopt when allowed).
std::optional<ezio::Errc> refusal(const std::string& arg, std::uint64_t end, bool is_partition,
                                  bool force, std::string* message = nullptr) {
    try {
        ezio::check_target(arg, end, is_partition, force);
        return std::nullopt;
    } catch (const ezio::Error& e) {
        if (message)
            *message = e.what();
        return e.code();
    }
}

const ezio::DiskInfo* find(const std::vector<ezio::DiskInfo>& disks, const std::string& name) {
    for (const auto& d : disks)
        if (d.name == name)
            return &d;
    return nullptr;
}

TEST(DiskLoop, EnumerateSeesAttachedLoops) {
    REQUIRE_ROOT();
    TestLoop plain({.size = 8 * MiB});
    TestLoop ro({.size = 4 * MiB, .read_only = true});
    TestLoop parted({.size = 8 * MiB, .partition_table = true});

    const auto disks = ezio::enumerate_disks();
    const auto* p = find(disks, plain.name());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->node, plain.node());
    EXPECT_EQ(p->size, 8 * MiB);
    EXPECT_FALSE(p->is_partition);
    EXPECT_FALSE(p->read_only);
    EXPECT_TRUE(p->partitions.empty());
    EXPECT_EQ(p->in_use_reason, "");
    EXPECT_TRUE(p->eligible());
    struct stat st {};
    ASSERT_EQ(::stat(plain.node().c_str(), &st), 0);
    EXPECT_EQ(p->devnum, st.st_rdev);
    EXPECT_NE(p->syspath.find("/" + plain.name()), std::string::npos);

    const auto* r = find(disks, ro.name());
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(r->read_only);
    EXPECT_FALSE(r->eligible());

    const auto* whole = find(disks, parted.name());
    const auto* part = find(disks, parted.partition_name());
    ASSERT_NE(whole, nullptr);
    ASSERT_NE(part, nullptr);
    EXPECT_EQ(whole->partitions, std::vector<std::string>{parted.partition_name()});
    EXPECT_TRUE(part->is_partition);
    EXPECT_EQ(part->parent, parted.name());
    EXPECT_EQ(part->size, 7 * MiB);
    EXPECT_EQ(part->node, parted.partition_node());

    // No RAM disks, no unattached (size 0) loops.
    for (const auto& d : disks) {
        EXPECT_GT(d.size, 0u) << d.name;
        EXPECT_FALSE(d.name.starts_with("zram") || d.name.starts_with("ram")) << d.name;
    }

    // describe_disk by name and by node agree.
    const auto by_name = ezio::describe_disk(parted.partition_name());
    const auto by_node = ezio::describe_disk(parted.partition_node());
    EXPECT_EQ(by_name, by_node);
    EXPECT_EQ(by_name.parent, parted.name());
    try {
        ezio::describe_disk("no-such-disk-xyz");
        ADD_FAILURE() << "describe_disk of a missing name did not throw";
    } catch (const ezio::Error& e) {
        EXPECT_EQ(e.code(), ezio::Errc::NotFound);
    }
}

TEST(DiskLoop, RunningSystemDiskIsNeverATarget) {
    REQUIRE_ROOT();
    struct stat root {};
    ASSERT_EQ(::stat("/", &root), 0);
    if (major(root.st_dev) == 0)
        GTEST_SKIP() << "/ is not on a block device here (tmpfs, overlay, NFS or btrfs)";
    const auto table = ezio::read_disk_table();
    const ezio::SystemUsage system = ezio::SystemUsage::read(table);
    ASSERT_FALSE(system.system_disks.empty()) << "the disk of / was not found";
    for (const auto& disk : system.system_disks) {
        const auto it = table.find(disk);
        ASSERT_NE(it, table.end());
        // check_target refuses before it opens anything.
        std::string message;
        EXPECT_EQ(refusal(it->second.node, 1, false, /*force=*/true, &message),
                  ezio::Errc::TargetBusy);
        EXPECT_NE(message.find(it->second.node), std::string::npos) << message;
        EXPECT_NE(message.find("not even with force"), std::string::npos) << message;
        EXPECT_TRUE(ezio::describe_disk(disk).in_use()) << disk;
    }
}

TEST(DiskLoop, MountedExt4IsRefusedEvenWithForceAndUntouched) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 16 * MiB});
    make_ext4(loop.node());
    TestMount mount(loop.node());
    const std::string before = sha256_of(loop.node());
    std::string message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, false, &message), ezio::Errc::TargetBusy);
    EXPECT_NE(message.find("mounted on " + mount.dir().string()), std::string::npos) << message;
    EXPECT_NE(message.find(loop.node()), std::string::npos) << message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, true), ezio::Errc::TargetBusy);
    EXPECT_EQ(refusal(loop.name(), MiB, false, true), ezio::Errc::TargetBusy);
    const auto info = ezio::describe_disk(loop.node());
    EXPECT_NE(info.in_use_reason.find("mounted"), std::string::npos) << info.in_use_reason;
    EXPECT_EQ(sha256_of(loop.node()), before);
}

TEST(DiskLoop, WholeDiskWithAMountedPartitionIsRefusedEvenWithForce) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 16 * MiB, .partition_table = true});
    make_ext4(loop.partition_node());
    TestMount mount(loop.partition_node());
    const std::string before = sha256_of(loop.node());
    std::string message;
    EXPECT_EQ(refusal(loop.node(), MiB, false, true, &message), ezio::Errc::TargetBusy);
    EXPECT_NE(message.find(loop.partition_name() + " is mounted"), std::string::npos) << message;
    EXPECT_EQ(sha256_of(loop.node()), before);
}

TEST(DiskLoop, ReadOnlyLoopIsRefused) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 8 * MiB, .read_only = true});
    const std::string before = sha256_of(loop.node());
    std::string message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, false, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("read-only"), std::string::npos) << message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, true), ezio::Errc::InvalidTarget);
    EXPECT_EQ(sha256_of(loop.node()), before);
}

TEST(DiskLoop, TooSmallLoopIsRefused) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 4 * MiB});
    const std::string before = sha256_of(loop.node());
    std::string message;
    EXPECT_EQ(refusal(loop.node(), 4 * MiB + 1, true, true, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("image needs"), std::string::npos) << message;
    EXPECT_FALSE(refusal(loop.node(), 4 * MiB, true, false).has_value());  // exactly fits
    EXPECT_EQ(sha256_of(loop.node()), before);
}

TEST(DiskLoop, PartitionedWholeDiskNeedsForceForAPartitionImage) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 16 * MiB, .partition_table = true});
    const std::string before = sha256_of(loop.node());
    std::string message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, false, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("whole disk with partitions (" + loop.partition_name() + ")"),
              std::string::npos)
        << message;
    const auto forced = ezio::check_target(loop.node(), MiB, true, true);
    EXPECT_EQ(forced.node, loop.node());
    EXPECT_EQ(forced.overridden.size(), 1u);
    // Its partition is a fine target, and a whole-disk image needs no force.
    const auto part = ezio::check_target(loop.partition_node(), MiB, true, false);
    EXPECT_EQ(part.node, loop.partition_node());
    EXPECT_EQ(part.whole_disk_node, loop.node());
    EXPECT_EQ(part.size, 15 * MiB);
    EXPECT_TRUE(part.overridden.empty());
    EXPECT_FALSE(refusal(loop.node(), MiB, false, false).has_value());
    EXPECT_EQ(sha256_of(loop.node()), before);
}

TEST(DiskLoop, ExclusiveHolderNeedsForce) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 8 * MiB});
    const int held = ::open(loop.node().c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    ASSERT_GE(held, 0) << std::strerror(errno);
    std::string message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, false, &message), ezio::Errc::TargetBusy);
    EXPECT_NE(message.find("opened exclusively"), std::string::npos) << message;
    const auto forced = ezio::check_target(loop.node(), MiB, true, true);
    EXPECT_EQ(forced.overridden.size(), 1u);
    // The re-check a writer makes while holding the device itself.
    EXPECT_NO_THROW(ezio::check_target(loop.node(), MiB, true, false, /*held_by_caller=*/true));
    ::close(held);
    EXPECT_FALSE(refusal(loop.node(), MiB, true, false).has_value());
}

TEST(DiskLoop, ActiveSwapIsRefusedEvenWithForce) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 8 * MiB});
    ASSERT_EQ(std::system(("mkswap " + loop.node() + " >/dev/null 2>&1").c_str()), 0);
    if (::swapon(loop.node().c_str(), 0) != 0)
        GTEST_SKIP() << "swapon not possible here: " << std::strerror(errno);
    struct SwapOff {
        std::string node;
        ~SwapOff() { ::swapoff(node.c_str()); }
    } off{loop.node()};
    const std::string before = sha256_of(loop.node());
    std::string message;
    EXPECT_EQ(refusal(loop.node(), MiB, true, true, &message), ezio::Errc::TargetBusy);
    EXPECT_NE(message.find("active swap"), std::string::npos) << message;
    EXPECT_EQ(sha256_of(loop.node()), before);
}

TEST(DiskLoop, ResolvesNamesAndLinksAndRefusesNonDevices) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 8 * MiB});
    const fs::path link = scratch_dir() / "by-id-like-link";
    fs::remove(link);
    fs::create_symlink(loop.node(), link);
    EXPECT_EQ(ezio::check_target(loop.name(), MiB, true, false).node, loop.node());
    EXPECT_EQ(ezio::check_target(link.string(), MiB, true, false).node, loop.node());
    fs::remove(link);
    const fs::path file = scratch_dir() / "plain-file";
    { std::ofstream(file) << "x"; }
    EXPECT_EQ(refusal(file.string(), 1, true, true), ezio::Errc::InvalidTarget);
    EXPECT_EQ(refusal("/dev/null", 1, true, true), ezio::Errc::InvalidTarget);
    EXPECT_EQ(refusal("no-such-device-xyz", 1, true, true), ezio::Errc::InvalidTarget);
    fs::remove(file);
}

TEST(DiskLoop, WholeDiskLockExcludesASecondWriter) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 8 * MiB, .partition_table = true});
    const auto t = ezio::check_target(loop.partition_node(), MiB, true, false);
    ezio::WholeDiskLock lock(t.whole_disk_node);
    EXPECT_TRUE(lock.held());
    const auto start = std::chrono::steady_clock::now();
    try {
        ezio::WholeDiskLock second(t.whole_disk_node, std::chrono::milliseconds(200));
        ADD_FAILURE() << "a second lock was granted";
    } catch (const ezio::Error& e) {
        EXPECT_EQ(e.code(), ezio::Errc::TargetBusy);
        EXPECT_NE(std::string(e.what()).find(loop.node()), std::string::npos) << e.what();
    }
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
    lock.release_and_rescan(t.name, false);
    EXPECT_FALSE(lock.held());
    ezio::WholeDiskLock again(t.whole_disk_node, std::chrono::milliseconds(200));
    EXPECT_NO_THROW(again.release_and_rescan(loop.name(), true));  // BLKRRPART too
    try {
        ezio::trigger_change_event("no-such-disk-xyz");
        ADD_FAILURE() << "change event for a missing device did not fail";
    } catch (const ezio::Error& e) {
        EXPECT_NE(std::string(e.what()).find("no-such-disk-xyz"), std::string::npos);
    }
    EXPECT_THROW(ezio::trigger_change_event("../x"), ezio::Error);
}

// Collects monitor events until `done` says so or `timeout` passes; events
// after the one that satisfied `done` stay for the next call.
class Events {
  public:
    explicit Events(ezio::DiskMonitor& m) : m_(m) {}
    std::vector<ezio::DiskEvent> wait(const std::function<bool(const ezio::DiskEvent&)>& done,
                                      std::chrono::milliseconds timeout) {
        std::vector<ezio::DiskEvent> all;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            while (!pending_.empty()) {
                all.push_back(std::move(pending_.front()));
                pending_.pop_front();
                if (done(all.back()))
                    return all;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return all;
            pollfd p{m_.fd(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            for (auto& e : m_.read_events())
                pending_.push_back(std::move(e));
        }
    }

  private:
    ezio::DiskMonitor& m_;
    std::deque<ezio::DiskEvent> pending_;
};

bool is(const ezio::DiskEvent& e, ezio::DiskEvent::Kind kind, const std::string& name) {
    return e.kind == kind && e.disk.name == name;
}

TEST(DiskLoop, MonitorSeesAttachChangeMountAndDetach) {
    REQUIRE_ROOT();
    using Kind = ezio::DiskEvent::Kind;
    constexpr auto kTimeout = std::chrono::seconds(10);
    ezio::DiskMonitor monitor;
    Events events_of(monitor);
    if (::access("/run/udev/control", F_OK) != 0) {
        EXPECT_FALSE(monitor.uses_udev()) << "no udevd: kernel uevents expected";
    }
    // The first batch: every listed device present now, as Added.
    auto initial = events_of.wait([](const ezio::DiskEvent&) { return true; }, kTimeout);
    ASSERT_FALSE(initial.empty());
    for (const auto& e : initial)
        EXPECT_EQ(e.kind, Kind::Added) << e.disk.name;

    auto loop = std::make_unique<TestLoop>(LoopOptions{.size = 16 * MiB, .partition_table = true});
    const std::string name = loop->name(), part = loop->partition_name();
    auto events = events_of.wait([&](const ezio::DiskEvent& e) { return is(e, Kind::Added, name); },
                                 kTimeout);
    ASSERT_FALSE(events.empty());
    ASSERT_TRUE(is(events.back(), Kind::Added, name)) << "attach of " << name << " not seen";
    EXPECT_EQ(events.back().disk.size, 16 * MiB);
    EXPECT_EQ(events.back().disk.node, loop->node());
    events = events_of.wait([&](const ezio::DiskEvent& e) { return is(e, Kind::Added, part); },
                            kTimeout);
    ASSERT_TRUE(!events.empty() && is(events.back(), Kind::Added, part));
    EXPECT_EQ(events.back().disk.parent, name);

    // A change uevent (what release_and_rescan sends) is reported.
    ezio::trigger_change_event(part);
    events = events_of.wait([&](const ezio::DiskEvent& e) { return is(e, Kind::Changed, part); },
                            kTimeout);
    ASSERT_TRUE(!events.empty() && is(events.back(), Kind::Changed, part)) << "no change event";

    // Mounting sends no uevent; the mount table watch notices.
    make_ext4(loop->partition_node());
    {
        TestMount mount(loop->partition_node());
        events = events_of.wait(
            [&](const ezio::DiskEvent& e) {
                return e.kind == Kind::Changed && e.disk.name == part &&
                       e.disk.in_use_reason.find("mounted") != std::string::npos;
            },
            kTimeout);
        ASSERT_FALSE(events.empty());
        EXPECT_NE(events.back().disk.in_use_reason.find("mounted"), std::string::npos)
            << "mount of " << part << " not reported";
    }
    events = events_of.wait(
        [&](const ezio::DiskEvent& e) {
            return e.kind == Kind::Changed && e.disk.name == part && !e.disk.in_use();
        },
        kTimeout);
    ASSERT_FALSE(events.empty());
    EXPECT_FALSE(events.back().disk.in_use()) << events.back().disk.in_use_reason;

    loop.reset();  // detach
    bool part_removed = false;
    events = events_of.wait(
        [&](const ezio::DiskEvent& e) {
            part_removed = part_removed || is(e, Kind::Removed, part);
            return is(e, Kind::Removed, name);
        },
        kTimeout);
    ASSERT_FALSE(events.empty());
    EXPECT_TRUE(is(events.back(), Kind::Removed, name)) << "detach of " << name << " not seen";
    EXPECT_TRUE(part_removed) << part << " removal not seen";
}

}  // namespace

namespace {

TEST(DiskLoop, MonitorReportsAReplacedMediumAsRemovedThenAdded) {
    REQUIRE_ROOT();
    using Kind = ezio::DiskEvent::Kind;
    constexpr auto kTimeout = std::chrono::seconds(10);
    ezio::DiskMonitor monitor;
    Events events_of(monitor);
    TestLoop loop({.size = 8 * MiB});
    auto events = events_of.wait(
        [&](const ezio::DiskEvent& e) { return is(e, Kind::Added, loop.name()); }, kTimeout);
    ASSERT_TRUE(!events.empty() && is(events.back(), Kind::Added, loop.name()));
    const std::string seq = events.back().disk.properties["DISKSEQ"];

    if (!loop.reattach())
        GTEST_SKIP() << "another process took " << loop.name() << " while it was detached";
    bool removed = false;
    events = events_of.wait(
        [&](const ezio::DiskEvent& e) {
            if (e.disk.name != loop.name())
                return false;
            EXPECT_NE(e.kind, Kind::Changed) << "a new medium must not read as a change";
            removed = removed || e.kind == Kind::Removed;
            return e.kind == Kind::Added;
        },
        kTimeout);
    EXPECT_TRUE(removed) << "the old medium's removal was not reported";
    ASSERT_TRUE(!events.empty() && is(events.back(), Kind::Added, loop.name()));
    if (!seq.empty()) {
        EXPECT_NE(events.back().disk.properties["DISKSEQ"], seq);
    }
}

}  // namespace

namespace {

TEST(DiskLoop, DirectWritesReachTheDeviceAndUnalignedOnesStayBuffered) {
    REQUIRE_ROOT();
    TestLoop loop({.size = 8 * MiB, .fill = 0xa5});
    auto t = ezio::Target::open(loop.node(), ezio::Target::Access::ReadWrite, false);
    EXPECT_FALSE(t->direct_io());
    // A loop device takes the flag of the disk under its backing file.
    EXPECT_TRUE(t->rotational().has_value());
    ASSERT_EQ(t->use_direct_io(), 0);
    EXPECT_TRUE(t->direct_io());

    // Aligned (buffers, offset, lengths): through O_DIRECT.
    std::unique_ptr<char, decltype(&std::free)> a(
        static_cast<char*>(std::aligned_alloc(4096, 64 * 1024)), &std::free);
    for (int i = 0; i < 64 * 1024; ++i)
        a.get()[i] = static_cast<char>(i * 7);
    iovec aligned[2] = {{a.get(), 16 * 1024}, {a.get() + 16 * 1024, 48 * 1024}};
    EXPECT_EQ(t->writev_at(aligned, 2, MiB), 0);
    // Not aligned: the buffered descriptor takes it.
    const std::string odd(1000, 'x');
    iovec unaligned{const_cast<char*>(odd.data()), odd.size()};
    EXPECT_EQ(t->writev_at(&unaligned, 1, 3 * MiB + 7), 0);
    ASSERT_EQ(t->flush(), 0);
    t.reset();

    std::ifstream in(loop.backing(), std::ios::binary);
    std::vector<char> disk((std::istreambuf_iterator<char>(in)), {});
    ASSERT_EQ(disk.size(), 8 * MiB);
    EXPECT_TRUE(std::equal(a.get(), a.get() + 64 * 1024, disk.begin() + MiB));
    EXPECT_TRUE(std::equal(odd.begin(), odd.end(), disk.begin() + 3 * MiB + 7));
    EXPECT_EQ(disk[MiB - 1], static_cast<char>(0xa5));
    EXPECT_EQ(disk[MiB + 64 * 1024], static_cast<char>(0xa5));
    EXPECT_EQ(disk[3 * MiB + 6], static_cast<char>(0xa5));
    EXPECT_EQ(disk[3 * MiB + 1007], static_cast<char>(0xa5));
}

}  // namespace
