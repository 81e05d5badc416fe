// May eziod write an image onto this block device? The one place that says
// no, and why.
//
// check_target() resolves what the user named ("sda1", "/dev/sda1",
// "/dev/disk/by-id/...", "/dev/disk/by-path/...") to a block device node and
// refuses, with ezio::Error naming the device:
//
//   refusal                                         Errc           with force
//   not a block device / no such device             InvalidTarget  refused
//   EZIO_IGNORE=1 (on it or on its whole disk)      InvalidTarget  refused
//   a RAM disk (ram*, zram*)                        InvalidTarget  refused
//   mounted (it, a partition, or a dm/md on top)    TargetBusy     refused
//   on the disk holding the running system's "/"    TargetBusy     refused
//   active swap (it, a partition, or on top)        TargetBusy     refused
//   read-only                                       InvalidTarget  refused
//   no medium, or smaller than image_end            InvalidTarget  refused
//   whole disk with partitions, partition image     InvalidTarget  allowed
//   held by md/dm, md/LVM/ZFS member signature,
//     or opened O_EXCL by another program           TargetBusy     allowed
//
// Nothing is written, and only possible targets are opened (read-only, for
// the exclusive-open probe). The answer holds for the moment it is given:
// the caller closes the race by opening the target O_EXCL (Target::open
// does) and calling check_target() once more while holding it — the second
// call then sees our own open as an exclusive holder, so pass
// `held_by_caller = true` there.
//
// Threads: blocking (sysfs, /proc, open); call it off the main loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "disk_info.hpp"
#include "disk_usage.hpp"

namespace ezio {

struct ResolvedTarget {
    std::string node;             // "/dev/sda1"
    std::string name;             // "sda1"
    std::string whole_disk_node;  // "/dev/sda" (== node for a whole disk)
    std::string whole_disk_name;  // "sda"
    std::uint64_t size = 0;       // bytes
    // What `force` let through, one sentence each, for the job's log.
    std::vector<std::string> overridden;
    DiskInfo disk;  // in_use_reason filled in
};

// `image_end`: the highest extent end of the image (bytes the target must
// hold). `image_is_partition`: the image is one partition's content (the
// partclone layout), not a whole disk with its partition table.
// `held_by_caller`: the caller already holds the target open O_EXCL (the
// re-check described above); the exclusive-open probe is then skipped.
// Throws ezio::Error(InvalidTarget | TargetBusy | Failed).
ResolvedTarget check_target(const std::string& arg, std::uint64_t image_end,
                            bool image_is_partition, bool force, bool held_by_caller = false);

// The decision alone, on facts already gathered (check_target() gathers
// them); pure, so every rule is unit-tested without devices. `whole` is the
// whole disk of `disk` (== disk for a whole disk).
ResolvedTarget judge_target(const DiskInfo& disk, const DiskInfo& whole, const DiskUsage& usage,
                            std::uint64_t image_end, bool image_is_partition, bool force);

}  // namespace ezio
