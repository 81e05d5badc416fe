// Disk discovery without devices: the /proc and udev parsers, the in-use
// verdict on a made-up device table, every rule of judge_target(), and the
// duplicator match.
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include "disk_info.hpp"
#include "disk_match.hpp"
#include "disk_usage.hpp"
#include "error.hpp"
#include "target_safety.hpp"

namespace {

using ezio::DiskInfo;
using ezio::DiskUsage;
using ezio::Errc;

constexpr std::uint64_t MiB = 1024 * 1024;

TEST(DiskParse, MountinfoFields) {
    const char* text =
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
        "36 27 8:17 /sub /mnt/with\\040space rw master:1 propagate_from:2 - ext3 /dev/sdb1 rw\n"
        "garbage line\n"
        "40 27 0:45 / /srv rw - btrfs /dev/sdc2 rw,space_cache\n"
        "41 27 x:1 / /bad rw - ext4 /dev/sdz rw\n";
    const auto m = ezio::parse_mountinfo(text);
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m[0].major, 0u);
    EXPECT_EQ(m[0].mount_point, "/proc");
    EXPECT_EQ(m[1].major, 254u);
    EXPECT_EQ(m[1].minor, 0u);
    EXPECT_EQ(m[1].mount_point, "/");
    EXPECT_EQ(m[1].fs_type, "ext4");
    EXPECT_EQ(m[1].source, "/dev/vda");
    EXPECT_EQ(m[2].major, 8u);
    EXPECT_EQ(m[2].minor, 17u);
    EXPECT_EQ(m[2].root, "/sub");
    EXPECT_EQ(m[2].mount_point, "/mnt/with space");
    EXPECT_EQ(m[2].source, "/dev/sdb1");
    EXPECT_EQ(m[3].fs_type, "btrfs");
    EXPECT_EQ(m[3].source, "/dev/sdc2");
}

TEST(DiskParse, MountinfoEmptyAndTruncated) {
    EXPECT_TRUE(ezio::parse_mountinfo("").empty());
    EXPECT_TRUE(ezio::parse_mountinfo("27 1 254:0 / / rw - ext4").empty());
    // no trailing newline
    EXPECT_EQ(ezio::parse_mountinfo("27 1 254:0 / / rw - ext4 /dev/vda rw").size(), 1u);
}

TEST(DiskParse, Swaps) {
    const char* text =
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/sda3                               partition\t8388604\t\t0\t\t-2\n"
        "/swap\\040file                           file\t\t1048572\t\t0\t\t-3\n"
        "/dev/zram0                              partition\t4194300\t\t0\t\t100\n";
    const auto s = ezio::parse_swaps(text);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0], "/dev/sda3");
    EXPECT_EQ(s[1], "/swap file");
    EXPECT_EQ(s[2], "/dev/zram0");
    EXPECT_TRUE(ezio::parse_swaps("Filename\tType\tSize\tUsed\tPriority\n").empty());
    EXPECT_TRUE(ezio::parse_swaps("").empty());
}

TEST(DiskParse, Devlinks) {
    const auto l = ezio::split_devlinks(
        "/dev/disk/by-path/pci-0000:00:1f.2-ata-1  /dev/disk/by-id/ata-X_Y /dev/disk/by-id/wwn-1");
    ASSERT_EQ(l.size(), 3u);
    EXPECT_EQ(l[0], "/dev/disk/by-path/pci-0000:00:1f.2-ata-1");
    EXPECT_EQ(l[1], "/dev/disk/by-id/ata-X_Y");
    EXPECT_EQ(l[2], "/dev/disk/by-id/wwn-1");
    EXPECT_TRUE(ezio::split_devlinks("").empty());
    EXPECT_TRUE(ezio::split_devlinks("   ").empty());
}

TEST(DiskParse, Escapes) {
    EXPECT_EQ(ezio::unescape_octal("a\\040b\\011c\\134d"), "a b\tc\\d");
    EXPECT_EQ(ezio::unescape_octal("end\\04"), "end\\04");  // incomplete: kept
    EXPECT_EQ(ezio::unescape_octal("\\089"), "\\089");      // not octal: kept
    EXPECT_EQ(ezio::decode_udev_enc("Fake\\x20Disk\\x20\\x20"), "Fake Disk");
    EXPECT_EQ(ezio::decode_udev_enc("WDC\\x2fX"), "WDC/X");
    EXPECT_EQ(ezio::decode_udev_enc("bad\\xZZ"), "bad\\xZZ");
}

TEST(DiskParse, MemberTypes) {
    EXPECT_TRUE(ezio::is_member_fs_type("linux_raid_member"));
    EXPECT_TRUE(ezio::is_member_fs_type("LVM2_member"));
    EXPECT_TRUE(ezio::is_member_fs_type("isw_raid_member"));
    EXPECT_TRUE(ezio::is_member_fs_type("zfs_member"));
    EXPECT_FALSE(ezio::is_member_fs_type("ext4"));
    EXPECT_FALSE(ezio::is_member_fs_type(""));
    EXPECT_FALSE(ezio::is_member_fs_type("crypto_LUKS"));
}

// A made-up machine: sda (system: sda2 is "/", sda1 unmounted), sdb with
// sdb1 mounted and sdb2 an md member held by md0, sdc free and empty, sdd a
// swap partition, sde with an LVM LV (dm-0) mounted on top of sde1.
class Table : public ::testing::Test {
  protected:
    void SetUp() override {
        add_disk("sda", 8, 0, {"sda1", "sda2"});
        add_part("sda1", "sda", 8, 1);
        add_part("sda2", "sda", 8, 2);
        add_disk("sdb", 8, 16, {"sdb1", "sdb2"});
        add_part("sdb1", "sdb", 8, 17);
        add_part("sdb2", "sdb", 8, 18);
        table["sdb2"].fs_type = "linux_raid_member";
        table["sdb2"].holders = {"md0"};
        add_disk("md0", 9, 0, {});
        table["md0"].slaves = {"sdb2"};
        add_disk("sdc", 8, 32, {});
        add_disk("sdd", 8, 48, {"sdd1"});
        add_part("sdd1", "sdd", 8, 49);
        add_disk("sde", 8, 64, {"sde1"});
        add_part("sde1", "sde", 8, 65);
        table["sde1"].holders = {"dm-0"};
        add_disk("dm-0", 253, 0, {});
        table["dm-0"].slaves = {"sde1"};

        system.mounts = {{makedev(8, 2), "/"}, {makedev(8, 17), "/data"}, {makedev(253, 0), "/lv"}};
        system.swaps = {makedev(8, 49)};
        system.system_disks = ezio::disks_below(makedev(8, 2), table);
        system.root_source = "/dev/sda2";
    }
    void add_disk(const std::string& name, unsigned maj, unsigned min,
                  std::vector<std::string> parts) {
        DiskInfo d;
        d.name = name;
        d.node = "/dev/" + name;
        d.devnum = makedev(maj, min);
        d.size = 64 * MiB;
        d.partitions = std::move(parts);
        table[name] = d;
    }
    void add_part(const std::string& name, const std::string& parent, unsigned maj, unsigned min) {
        add_disk(name, maj, min, {});
        table[name].is_partition = true;
        table[name].parent = parent;
        table[name].size = 16 * MiB;
    }
    DiskUsage usage(const std::string& name, const ezio::ExclusiveProbe& probe = nullptr) {
        return ezio::assess_usage(table.at(name), table, system, probe);
    }

    std::map<std::string, DiskInfo> table;
    ezio::SystemUsage system;
};

TEST_F(Table, SystemDisksFollowPartitionToDisk) {
    EXPECT_EQ(system.system_disks, std::set<std::string>{"sda"});
    EXPECT_EQ(ezio::disks_below(makedev(253, 0), table), (std::set<std::string>{"dm-0", "sde"}));
    EXPECT_TRUE(ezio::disks_below(makedev(0, 21), table).empty());
}

TEST_F(Table, UnmountedPartitionOfSystemDiskIsSystem) {
    const auto u = usage("sda1");
    EXPECT_TRUE(u.mounted.empty());
    EXPECT_NE(u.system.find("sda1 is on sda"), std::string::npos) << u.system;
    EXPECT_NE(u.system.find("/dev/sda2"), std::string::npos) << u.system;
    EXPECT_TRUE(u.hard());
}

TEST_F(Table, WholeDiskIsMountedThroughItsPartition) {
    const auto u = usage("sdb");
    EXPECT_NE(u.mounted.find("sdb1 is mounted on /data"), std::string::npos) << u.mounted;
    EXPECT_NE(u.holders.find("held by md0"), std::string::npos) << u.holders;
    EXPECT_NE(u.member.find("linux_raid_member"), std::string::npos) << u.member;
    EXPECT_TRUE(u.system.empty());
}

TEST_F(Table, PartitionBesideAMountedOneIsNotMounted) {
    const auto u = usage("sdb2");
    EXPECT_TRUE(u.mounted.empty()) << u.mounted;
    EXPECT_FALSE(u.hard());
    EXPECT_FALSE(u.holders.empty());
    EXPECT_FALSE(u.member.empty());
}

TEST_F(Table, MountedThroughAStackedDevice) {
    // sde1 carries an LVM LV that is mounted: writing sde1 or sde would
    // corrupt a live filesystem, so it counts as mounted, not just "held".
    EXPECT_NE(usage("sde1").mounted.find("dm-0 is mounted on /lv"), std::string::npos);
    EXPECT_NE(usage("sde").mounted.find("dm-0 is mounted on /lv"), std::string::npos);
}

TEST_F(Table, SwapPartitionAndItsDisk) {
    EXPECT_NE(usage("sdd1").swap.find("active swap"), std::string::npos);
    EXPECT_NE(usage("sdd").swap.find("through sdd1"), std::string::npos);
    EXPECT_TRUE(usage("sdd").mounted.empty());
}

TEST_F(Table, FreeDiskAndExclusiveProbe) {
    EXPECT_FALSE(usage("sdc").any());
    std::vector<std::string> probed;
    const auto u = usage("sdb2", [&](const std::string& node) {
        probed.push_back(node);
        return EBUSY;
    });
    EXPECT_EQ(probed, std::vector<std::string>{"/dev/sdb2"});
    EXPECT_NE(u.exclusive.find("opened exclusively"), std::string::npos);
    probed.clear();
    usage("sdb", [&](const std::string& node) {
        probed.push_back(node);
        return 0;
    });
    EXPECT_EQ(probed, (std::vector<std::string>{"/dev/sdb", "/dev/sdb1", "/dev/sdb2"}));
}

TEST_F(Table, SummaryJoinsReasons) {
    const auto s = usage("sdb").summary();
    EXPECT_NE(s.find("mounted"), std::string::npos);
    EXPECT_NE(s.find("; "), std::string::npos);
    EXPECT_EQ(usage("sdc").summary(), "");
}

// judge_target: every rule, in order.
class Judge : public Table {
  protected:
    void expect_refused(const std::string& name, Errc code, const std::string& needle,
                        bool image_is_partition, bool force, std::uint64_t end = MiB) {
        const DiskInfo& d = table.at(name);
        const DiskInfo& w = table.at(d.whole_disk());
        try {
            ezio::judge_target(d, w, usage(name), end, image_is_partition, force);
            ADD_FAILURE() << name << " was not refused (" << needle << ")";
        } catch (const ezio::Error& e) {
            EXPECT_EQ(e.code(), code) << e.what();
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("/dev/" + name), std::string::npos) << e.what();
        }
    }
};

TEST_F(Judge, FreeDiskPasses) {
    const auto r =
        ezio::judge_target(table.at("sdc"), table.at("sdc"), usage("sdc"), 64 * MiB, true, false);
    EXPECT_EQ(r.node, "/dev/sdc");
    EXPECT_EQ(r.whole_disk_node, "/dev/sdc");
    EXPECT_EQ(r.size, 64 * MiB);
    EXPECT_TRUE(r.overridden.empty());
}

TEST_F(Judge, PartitionReportsItsWholeDisk) {
    table["sdc"].partitions = {"sdc1"};
    add_part("sdc1", "sdc", 8, 33);
    const auto r =
        ezio::judge_target(table.at("sdc1"), table.at("sdc"), usage("sdc1"), MiB, true, false);
    EXPECT_EQ(r.whole_disk_node, "/dev/sdc");
    EXPECT_EQ(r.whole_disk_name, "sdc");
}

TEST_F(Judge, IgnoredNeverEvenWithForce) {
    table["sdc"].ignore = true;
    expect_refused("sdc", Errc::InvalidTarget, "EZIO_IGNORE=1", true, true);
    expect_refused("sdc", Errc::InvalidTarget, "not even with force", true, true);
}

TEST_F(Judge, RamDiskNeverEvenWithForce) {
    add_disk("zram0", 252, 0, {});
    expect_refused("zram0", Errc::InvalidTarget, "RAM disk", false, true);
}

TEST_F(Judge, MountedNeverEvenWithForce) {
    expect_refused("sdb1", Errc::TargetBusy, "mounted on /data", true, true);
    expect_refused("sdb", Errc::TargetBusy, "mounted on /data", false, true);
    expect_refused("sde1", Errc::TargetBusy, "mounted on /lv", true, true);
}

TEST_F(Judge, SystemDiskNeverEvenWithForce) {
    expect_refused("sda1", Errc::TargetBusy, "running system", true, true);
}

TEST_F(Judge, SwapNeverEvenWithForce) {
    expect_refused("sdd1", Errc::TargetBusy, "swap", true, true);
}

TEST_F(Judge, ReadOnlyAndSize) {
    table["sdc"].read_only = true;
    expect_refused("sdc", Errc::InvalidTarget, "read-only", true, true);
    table["sdc"].read_only = false;
    expect_refused("sdc", Errc::InvalidTarget, "image needs", true, true, 64 * MiB + 1);
    table["sdc"].size = 0;
    expect_refused("sdc", Errc::InvalidTarget, "no medium", true, true, 0);
}

TEST_F(Judge, PartitionedWholeDiskNeedsForceForAPartitionImage) {
    table["sdc"].partitions = {"sdc1"};
    add_part("sdc1", "sdc", 8, 33);
    expect_refused("sdc", Errc::InvalidTarget, "whole disk with partitions (sdc1)", true, false);
    const auto r =
        ezio::judge_target(table.at("sdc"), table.at("sdc"), usage("sdc"), MiB, true, true);
    ASSERT_EQ(r.overridden.size(), 1u);
    // A whole-disk image replaces the partition table: no force needed.
    EXPECT_NO_THROW(
        ezio::judge_target(table.at("sdc"), table.at("sdc"), usage("sdc"), MiB, false, false));
}

TEST_F(Judge, HoldersMembersAndExclusiveNeedForce) {
    expect_refused("sdb2", Errc::TargetBusy, "held by md0", true, false);
    expect_refused("sdb2", Errc::TargetBusy, "force overrides", true, false);
    const auto r =
        ezio::judge_target(table.at("sdb2"), table.at("sdb"), usage("sdb2"), MiB, true, true);
    EXPECT_EQ(r.overridden.size(), 2u);  // holders + member
    table["sdc"].fs_type = "LVM2_member";
    expect_refused("sdc", Errc::TargetBusy, "LVM2_member", true, false);
    table["sdc"].fs_type.clear();
    const auto busy = [](const std::string&) { return EBUSY; };
    EXPECT_THROW(
        ezio::judge_target(table.at("sdc"), table.at("sdc"), usage("sdc", busy), MiB, true, false),
        ezio::Error);
    EXPECT_NO_THROW(
        ezio::judge_target(table.at("sdc"), table.at("sdc"), usage("sdc", busy), MiB, true, true));
}

// DuplicatorMatch
DiskInfo slot_disk() {
    DiskInfo d;
    d.name = "sdf";
    d.node = "/dev/sdf";
    d.size = 500 * MiB;
    d.by_path = {"/dev/disk/by-path/pci-0000:00:17.0-ata-3"};
    d.properties = {{"EZIO_AUTODEPLOY", "1"}, {"ID_MODEL", "Samsung_SSD_870"}};
    return d;
}

TEST(DuplicatorMatch, NeedsPropertyOrSlot) {
    ezio::DuplicatorMatch m;
    m.min_size = MiB;
    EXPECT_THROW(m.validate(), ezio::Error);
    EXPECT_FALSE(m.matches(slot_disk()));  // size alone would claim any disk
    m.property = "NOEQUALS";
    EXPECT_THROW(m.validate(), ezio::Error);
    m.property = "=1";
    EXPECT_THROW(m.validate(), ezio::Error);
    m.property = "EZIO_AUTODEPLOY=1";
    EXPECT_NO_THROW(m.validate());
    m.max_size = 1;
    EXPECT_THROW(m.validate(), ezio::Error);
}

TEST(DuplicatorMatch, Property) {
    ezio::DuplicatorMatch m;
    m.property = "EZIO_AUTODEPLOY=1";
    EXPECT_TRUE(m.matches(slot_disk()));
    m.property = "ID_MODEL=Samsung*";
    EXPECT_TRUE(m.matches(slot_disk()));
    m.property = "ID_MODEL=WDC*";
    EXPECT_FALSE(m.matches(slot_disk()));
    m.property = "ID_SERIAL=*";
    EXPECT_FALSE(m.matches(slot_disk()));  // absent property never matches
}

TEST(DuplicatorMatch, ByPathAndSize) {
    ezio::DuplicatorMatch m;
    m.by_path = "pci-0000:00:17.0-ata-[3-6]";
    EXPECT_TRUE(m.matches(slot_disk()));
    m.by_path = "/dev/disk/by-path/pci-0000:00:17.0-ata-?";
    EXPECT_TRUE(m.matches(slot_disk()));
    m.by_path = "pci-0000:00:17.0-ata-1";
    EXPECT_FALSE(m.matches(slot_disk()));
    m.by_path = "pci-0000:00:17.0-ata-3";
    m.min_size = 500 * MiB;
    m.max_size = 500 * MiB;
    EXPECT_TRUE(m.matches(slot_disk()));
    m.min_size = 500 * MiB + 1;
    EXPECT_FALSE(m.matches(slot_disk()));
    m.min_size.reset();
    m.max_size = 500 * MiB - 1;
    EXPECT_FALSE(m.matches(slot_disk()));
}

TEST(DuplicatorMatch, NeverIgnoredEmptyOrPartitionByDefault) {
    ezio::DuplicatorMatch m;
    m.property = "EZIO_AUTODEPLOY=1";
    auto d = slot_disk();
    d.ignore = true;
    EXPECT_FALSE(m.matches(d));
    d = slot_disk();
    d.size = 0;
    EXPECT_FALSE(m.matches(d));
    d = slot_disk();
    d.is_partition = true;
    d.parent = "sdf";
    EXPECT_FALSE(m.matches(d));
    m.partitions = true;
    EXPECT_TRUE(m.matches(d));
    EXPECT_NE(m.describe().find("EZIO_AUTODEPLOY=1"), std::string::npos);
}

TEST(DiskInfo, ListedAndEligible) {
    DiskInfo d = slot_disk();
    EXPECT_TRUE(ezio::disk_is_listed(d));
    EXPECT_TRUE(d.eligible());
    d.in_use_reason = "x";
    EXPECT_FALSE(d.eligible());
    d = slot_disk();
    d.name = "zram0";
    EXPECT_FALSE(ezio::disk_is_listed(d));
    d = slot_disk();
    d.size = 0;
    EXPECT_FALSE(ezio::disk_is_listed(d));
    d = slot_disk();
    d.node.clear();
    EXPECT_FALSE(ezio::disk_is_listed(d));
}

}  // namespace
