// What only udevd knows — ID_MODEL, ID_SERIAL, ID_BUS, by-id/by-path links,
// ID_FS_TYPE, EZIO_IGNORE, EZIO_AUTODEPLOY — faked with umockdev: each test
// re-runs this binary (only itself) under `umockdev-run -d FIXTURE`, which
// replaces /sys, /dev and the udev database with the fixture's devices. No
// real device is visible in there, so nothing real can be touched either.
//
// Skipped when umockdev-run (Debian package "umockdev") is not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "disk_info.hpp"
#include "disk_match.hpp"
#include "error.hpp"
#include "target_safety.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;
constexpr const char* kChildEnv = "EZIO_UMOCKDEV_CHILD";

// sda: SATA disk with sda1 (ext4). sdb: disk marked EZIO_IGNORE=1, with sdb1.
// sdc: removable USB disk, duplicator slot (EZIO_AUTODEPLOY=1), no
// partitions. sdd: an LVM physical volume. sr0: read-only. Sizes in 512-byte
// sectors.
constexpr const char* kFixture =
    R"(P: /devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1
N: sda1
E: DEVNAME=/dev/sda1
E: DEVTYPE=partition
E: MAJOR=8
E: MINOR=1
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_FS_TYPE=ext4
E: ID_MODEL=Fake_Disk
E: ID_PATH=pci-0000:00:1f.2-ata-1
E: DEVLINKS=/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1 /dev/disk/by-id/ata-Fake_Disk_SER123-part1
A: dev=8:1\n
A: partition=1\n
A: size=6144\n
A: ro=0\n
A: start=2048\n

P: /devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda
N: sda
E: DEVNAME=/dev/sda
E: DEVTYPE=disk
E: MAJOR=8
E: MINOR=0
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_BUS=ata
E: ID_MODEL=Fake_Disk
E: ID_MODEL_ENC=Fake\x20Disk\x20\x20\x20
E: ID_SERIAL=Fake_Disk_SER123
E: ID_SERIAL_SHORT=SER123
E: ID_PATH=pci-0000:00:1f.2-ata-1
E: ID_PART_TABLE_TYPE=dos
E: DEVLINKS=/dev/disk/by-path/pci-0000:00:1f.2-ata-1 /dev/disk/by-id/ata-Fake_Disk_SER123 /dev/disk/by-id/wwn-0x5000c500a1b2c3d4
A: dev=8:0\n
A: size=8192\n
A: ro=0\n
A: removable=0\n

P: /devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0
E: SUBSYSTEM=scsi
E: DEVTYPE=scsi_device
A: model=Fake Disk       \n
A: vendor=ATA     \n

P: /devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0/block/sdb/sdb1
N: sdb1
E: DEVNAME=/dev/sdb1
E: DEVTYPE=partition
E: MAJOR=8
E: MINOR=17
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_FS_TYPE=ext4
A: dev=8:17\n
A: partition=1\n
A: size=4096\n
A: ro=0\n

P: /devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0/block/sdb
N: sdb
E: DEVNAME=/dev/sdb
E: DEVTYPE=disk
E: MAJOR=8
E: MINOR=16
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_BUS=ata
E: ID_MODEL=Admin_Keep
E: ID_PATH=pci-0000:00:1f.2-ata-2
E: EZIO_IGNORE=1
E: DEVLINKS=/dev/disk/by-path/pci-0000:00:1f.2-ata-2
A: dev=8:16\n
A: size=8192\n
A: ro=0\n
A: removable=0\n

P: /devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host2/target2:0:0/2:0:0:0/block/sdc
N: sdc
E: DEVNAME=/dev/sdc
E: DEVTYPE=disk
E: MAJOR=8
E: MINOR=32
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_BUS=usb
E: ID_MODEL=Ultra_Fit
E: ID_SERIAL=SanDisk_Ultra_Fit_4C530001
E: ID_SERIAL_SHORT=4C530001
E: ID_PATH=pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0
E: EZIO_AUTODEPLOY=1
E: DEVLINKS=/dev/disk/by-path/pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0 /dev/disk/by-id/usb-SanDisk_Ultra_Fit_4C530001-0:0
A: dev=8:32\n
A: size=16384\n
A: ro=0\n
A: removable=1\n

P: /devices/pci0000:00/0000:00:1f.2/ata3/host3/target3:0:0/3:0:0:0/block/sdd
N: sdd
E: DEVNAME=/dev/sdd
E: DEVTYPE=disk
E: MAJOR=8
E: MINOR=48
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_FS_TYPE=LVM2_member
A: dev=8:48\n
A: size=8192\n
A: ro=0\n
A: removable=0\n

P: /devices/pci0000:00/0000:00:1f.2/ata4/host4/target4:0:0/4:0:0:0/block/sr0
N: sr0
E: DEVNAME=/dev/sr0
E: DEVTYPE=disk
E: MAJOR=11
E: MINOR=0
E: SUBSYSTEM=block
E: EZIO_TEST_FIXTURE=1
E: ID_BUS=ata
E: ID_MODEL=DVD_RW
A: dev=11:0\n
A: size=8192\n
A: ro=1\n
A: removable=1\n
)";

std::string find_umockdev_run() {
    for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
        const std::string p = std::string(dir) + "/umockdev-run";
        if (::access(p.c_str(), X_OK) == 0)
            return p;
    }
    return {};
}

// In the parent: runs this same test in a child under umockdev-run and
// returns true, or GTEST_SKIPs. In the child: returns false (go on testing).
bool ran_under_umockdev() {
    if (std::getenv(kChildEnv)) {
        if (!std::getenv("UMOCKDEV_DIR")) {
            ADD_FAILURE() << "started as the umockdev child, but not inside a testbed";
            return true;
        }
        // Every block device seen must be a fixture device: should the
        // preload library not be in effect, stop before touching any real
        // device (udisks' tests check such a marker too).
        for (const auto& [name, d] : ezio::read_disk_table()) {
            if (!d.properties.contains("EZIO_TEST_FIXTURE")) {
                ADD_FAILURE() << name << " is not a fixture device: not inside the testbed";
                return true;
            }
        }
        return false;
    }
    const std::string runner = find_umockdev_run();
    if (runner.empty()) {
        [] { GTEST_SKIP() << "umockdev-run not installed (Debian package umockdev)"; }();
        return true;
    }
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string filter =
        std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
    const fs::path self = fs::read_symlink("/proc/self/exe");
    const fs::path fixture =
        fs::temp_directory_path() / ("ezio-umockdev-" + std::to_string(::getpid()) + ".umockdev");
    { std::ofstream(fixture) << kFixture; }

    const pid_t pid = ::fork();
    if (pid == 0) {
        ::setenv(kChildEnv, "1", 1);
        // The preload library comes before the sanitizer runtime there.
        std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
        ::setenv("ASAN_OPTIONS",
                 (asan + (asan.empty() ? "" : ":") + "verify_asan_link_order=0").c_str(), 1);
        ::execl(runner.c_str(), runner.c_str(), "-d", fixture.c_str(), "--", self.c_str(),
                filter.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    fs::remove(fixture);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the test failed under umockdev-run (status " << status << "), see its output above";
    return true;
}

const ezio::DiskInfo& get(const std::vector<ezio::DiskInfo>& disks, const std::string& name) {
    for (const auto& d : disks)
        if (d.name == name)
            return d;
    throw std::runtime_error(name + " not enumerated");
}

ezio::Errc refusal(const std::string& arg, std::uint64_t end, bool is_partition, bool force,
                   std::string* message = nullptr) {
    try {
        ezio::check_target(arg, end, is_partition, force);
    } catch (const ezio::Error& e) {
        if (message)
            *message = e.what();
        return e.code();
    }
    return ezio::Errc::Failed;  // "not refused", for EXPECT_EQ messages
}

// udevd would create the DEVLINKS symlinks; in the testbed we do.
void make_link(const std::string& link, const std::string& target) {
    const fs::path real = fs::path(std::getenv("UMOCKDEV_DIR")) / fs::path(link).relative_path();
    fs::create_directories(real.parent_path());
    fs::remove(real);
    fs::create_symlink(target, real);
}

TEST(DiskUmockdev, PropertiesOnlyUdevSets) {
    if (ran_under_umockdev())
        return;
    const auto disks = ezio::enumerate_disks();
    std::vector<std::string> names;
    for (const auto& d : disks)
        names.push_back(d.name);
    EXPECT_EQ(names, (std::vector<std::string>{"sda", "sda1", "sdb", "sdb1", "sdc", "sdd", "sr0"}));

    const auto& sda = get(disks, "sda");
    EXPECT_EQ(sda.node, "/dev/sda");
    EXPECT_EQ(sda.size, 8192u * 512);
    EXPECT_EQ(sda.model, "Fake Disk");  // ID_MODEL_ENC, decoded and trimmed
    EXPECT_EQ(sda.serial, "SER123");    // ID_SERIAL_SHORT
    EXPECT_EQ(sda.bus, "ata");
    EXPECT_EQ(sda.by_id, (std::vector<std::string>{"/dev/disk/by-id/ata-Fake_Disk_SER123",
                                                   "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}));
    EXPECT_EQ(sda.by_path, std::vector<std::string>{"/dev/disk/by-path/pci-0000:00:1f.2-ata-1"});
    EXPECT_EQ(sda.partitions, std::vector<std::string>{"sda1"});
    EXPECT_FALSE(sda.removable);
    EXPECT_FALSE(sda.ignore);
    EXPECT_FALSE(sda.autodeploy);
    EXPECT_EQ(sda.properties.at("ID_PATH"), "pci-0000:00:1f.2-ata-1");
    EXPECT_EQ(sda.in_use_reason, "");

    const auto& sda1 = get(disks, "sda1");
    EXPECT_TRUE(sda1.is_partition);
    EXPECT_EQ(sda1.parent, "sda");
    EXPECT_EQ(sda1.fs_type, "ext4");
    EXPECT_EQ(sda1.serial, "SER123");  // from its disk
    EXPECT_EQ(sda1.by_path,
              std::vector<std::string>{"/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1"});

    EXPECT_TRUE(get(disks, "sdb").ignore);
    EXPECT_TRUE(get(disks, "sdb1").ignore);  // an ignored disk's partitions too
    EXPECT_FALSE(get(disks, "sdb1").eligible());

    const auto& sdc = get(disks, "sdc");
    EXPECT_TRUE(sdc.autodeploy);
    EXPECT_TRUE(sdc.removable);
    EXPECT_EQ(sdc.bus, "usb");
    EXPECT_EQ(sdc.model, "Ultra_Fit");  // no ID_MODEL_ENC: ID_MODEL as is
    EXPECT_EQ(sdc.serial, "4C530001");

    EXPECT_NE(get(disks, "sdd").in_use_reason.find("LVM2_member"), std::string::npos);
    EXPECT_TRUE(get(disks, "sr0").read_only);

    EXPECT_EQ(ezio::describe_disk("/dev/sda1"), sda1);
    EXPECT_EQ(ezio::describe_disk("sdc"), sdc);
}

TEST(DiskUmockdev, DuplicatorMatchesUdevSlots) {
    if (ran_under_umockdev())
        return;
    const auto disks = ezio::enumerate_disks();
    const auto claimed = [&](const ezio::DuplicatorMatch& m) {
        std::vector<std::string> out;
        for (const auto& d : disks)
            if (m.matches(d))
                out.push_back(d.name);
        return out;
    };
    ezio::DuplicatorMatch by_property;
    by_property.property = "EZIO_AUTODEPLOY=1";
    EXPECT_EQ(claimed(by_property), std::vector<std::string>{"sdc"});
    ezio::DuplicatorMatch by_slot;
    by_slot.by_path = "pci-0000:00:1f.2-ata-[1-2]";
    // sdb sits in slot 2 but is ignored; sda1's link ends in -part1.
    EXPECT_EQ(claimed(by_slot), std::vector<std::string>{"sda"});
    by_slot.min_size = 8 * MiB;
    EXPECT_TRUE(claimed(by_slot).empty());
    ezio::DuplicatorMatch usb;
    usb.property = "ID_BUS=usb";
    usb.min_size = 8 * MiB;
    usb.max_size = 8 * MiB;
    EXPECT_EQ(claimed(usb), std::vector<std::string>{"sdc"});
}

TEST(DiskUmockdev, TargetResolutionAndRefusals) {
    if (ran_under_umockdev())
        return;
    make_link("/dev/disk/by-id/ata-Fake_Disk_SER123", "../../sda");
    make_link("/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1", "../../sda1");

    const auto whole =
        ezio::check_target("/dev/disk/by-id/ata-Fake_Disk_SER123", MiB, false, false);
    EXPECT_EQ(whole.node, "/dev/sda");
    EXPECT_EQ(whole.whole_disk_node, "/dev/sda");
    EXPECT_EQ(whole.size, 8192u * 512);
    const auto part =
        ezio::check_target("/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1", MiB, true, false);
    EXPECT_EQ(part.node, "/dev/sda1");
    EXPECT_EQ(part.name, "sda1");
    EXPECT_EQ(part.whole_disk_node, "/dev/sda");
    EXPECT_EQ(part.disk.fs_type, "ext4");
    EXPECT_EQ(ezio::check_target("sda1", MiB, true, false).node, "/dev/sda1");

    std::string message;
    // EZIO_IGNORE: never, not even with force; also for the partition.
    EXPECT_EQ(refusal("sdb", MiB, false, true, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("EZIO_IGNORE=1"), std::string::npos) << message;
    EXPECT_NE(message.find("/dev/sdb"), std::string::npos) << message;
    EXPECT_EQ(refusal("/dev/sdb1", MiB, true, true, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("sdb1 is on sdb"), std::string::npos) << message;
    // Whole disk with partitions for a partition image: force needed.
    EXPECT_EQ(refusal("sda", MiB, true, false, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("whole disk with partitions (sda1)"), std::string::npos) << message;
    EXPECT_EQ(ezio::check_target("sda", MiB, true, true).overridden.size(), 1u);
    // LVM physical volume: force needed.
    EXPECT_EQ(refusal("sdd", MiB, true, false, &message), ezio::Errc::TargetBusy);
    EXPECT_NE(message.find("LVM2_member"), std::string::npos) << message;
    EXPECT_NO_THROW(ezio::check_target("sdd", MiB, true, true));
    // Read-only, too small.
    EXPECT_EQ(refusal("sr0", MiB, true, true), ezio::Errc::InvalidTarget);
    EXPECT_EQ(refusal("sda1", 3 * MiB + 1, true, true, &message), ezio::Errc::InvalidTarget);
    EXPECT_NE(message.find("image needs"), std::string::npos) << message;
    EXPECT_EQ(refusal("/dev/disk/by-id/no-such-disk", MiB, true, true), ezio::Errc::InvalidTarget);
}

}  // namespace
