#include "target_safety.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "disk_udev.hpp"
#include "disk_usage.hpp"
#include "error.hpp"
#include "target_path.hpp"

namespace ezio {
namespace {

std::string human_size(std::uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        ++u;
    }
    char buf[64];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    else
        std::snprintf(buf, sizeof buf, "%.1f %s (%llu bytes)", v, units[u],
                      static_cast<unsigned long long>(bytes));
    return buf;
}

[[noreturn]] void refuse(Errc code, const DiskInfo& d, const std::string& why,
                         const char* force_note) {
    throw Error(code, "refusing to write " + d.node + ": " + why + force_note);
}

constexpr const char* kNever = " (not even with force)";
constexpr const char* kForce = " (force overrides this)";
constexpr const char* kNone = "";

}  // namespace

ResolvedTarget judge_target(const DiskInfo& disk, const DiskInfo& whole, const DiskUsage& usage,
                            std::uint64_t image_end, bool image_is_partition, bool force) {
    if (disk.ignore)
        refuse(Errc::InvalidTarget, disk,
               whole.ignore && whole.name != disk.name
                   ? disk.name + " is on " + whole.name +
                         ", which udev rules mark EZIO_IGNORE=1 (never a target)"
                   : disk.name + " is marked EZIO_IGNORE=1 by udev rules (never a target)",
               kNever);
    if (disk.name.starts_with("ram") || disk.name.starts_with("zram"))
        refuse(Errc::InvalidTarget, disk, disk.name + " is a RAM disk (never a target)", kNever);
    if (!usage.mounted.empty())
        refuse(Errc::TargetBusy, disk, usage.mounted, kNever);
    if (!usage.system.empty())
        refuse(Errc::TargetBusy, disk, usage.system, kNever);
    if (!usage.swap.empty())
        refuse(Errc::TargetBusy, disk, usage.swap, kNever);
    if (disk.read_only)
        refuse(Errc::InvalidTarget, disk, disk.name + " is read-only", kNone);
    if (disk.size == 0)
        refuse(Errc::InvalidTarget, disk, disk.name + " has no medium (size 0)", kNone);
    if (disk.size < image_end)
        refuse(Errc::InvalidTarget, disk,
               disk.name + " holds " + human_size(disk.size) + " but the image needs " +
                   human_size(image_end),
               kNone);

    ResolvedTarget r;
    const auto overridable = [&](Errc code, const std::string& why) {
        if (why.empty())
            return;
        if (!force)
            refuse(code, disk, why, kForce);
        r.overridden.push_back(why);
    };
    if (image_is_partition && !disk.is_partition && !disk.partitions.empty()) {
        std::string list;
        for (const auto& p : disk.partitions)
            list += (list.empty() ? "" : ", ") + p;
        overridable(Errc::InvalidTarget,
                    disk.name + " is a whole disk with partitions (" + list +
                        ") and the image is a single partition; name a partition, or force to "
                        "overwrite the partition table");
    }
    overridable(Errc::TargetBusy, usage.holders);
    overridable(Errc::TargetBusy, usage.member);
    overridable(Errc::TargetBusy, usage.exclusive);

    r.node = disk.node;
    r.name = disk.name;
    r.whole_disk_node = whole.node;
    r.whole_disk_name = whole.name;
    r.size = disk.size;
    r.disk = disk;
    r.disk.in_use_reason = usage.summary();
    return r;
}

ResolvedTarget check_target(const std::string& arg, std::uint64_t image_end,
                            bool image_is_partition, bool force, bool held_by_caller) {
    // Errc::InvalidTarget for anything that is not a block device.
    const std::string node = resolve_target_path(arg, TargetKind::Device);

    struct stat st {};
    if (::stat(node.c_str(), &st) != 0)
        throw Error(Errc::InvalidTarget, node + ": " + std::strerror(errno));
    if (!S_ISBLK(st.st_mode))
        throw Error(Errc::InvalidTarget, node + " is not a block device");

    detail::UdevContext u;
    const auto table = detail::read_disk_table(u.get());
    const DiskInfo* disk = nullptr;
    for (const auto& [name, d] : table)
        if (d.devnum == st.st_rdev)
            disk = &d;
    if (!disk)
        throw Error(Errc::InvalidTarget,
                    node + " is not a disk or partition known to sysfs (major:minor " +
                        std::to_string(major(st.st_rdev)) + ":" +
                        std::to_string(minor(st.st_rdev)) + ")");
    const DiskInfo* whole = disk;
    if (disk->is_partition) {
        auto it = table.find(disk->parent);
        if (it == table.end())
            throw Error(Errc::InvalidTarget,
                        node + ": the whole disk of partition " + disk->name + " is not found");
        whole = &it->second;
    }
    DiskInfo target = *disk;
    // The node the user named may be an alias (/dev/mapper/x); report the
    // kernel's.
    if (target.node.empty())
        target.node = node;

    const SystemUsage system = SystemUsage::read(table);
    DiskUsage usage = assess_usage(target, table, system, nullptr);
    // Probe for an exclusive holder only when nothing else already rules
    // the device out: opening a device we would never write is a needless
    // race with its real users.
    if (!held_by_caller && !target.ignore && !usage.hard() && !target.read_only && target.size > 0)
        usage = assess_usage(target, table, system, probe_exclusive);
    return judge_target(target, *whole, usage, image_end, image_is_partition, force);
}

}  // namespace ezio
