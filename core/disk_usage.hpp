// Is a block device in use? The parsers for /proc/self/mountinfo,
// /proc/swaps and udev's DEVLINKS, a snapshot of the system's mounts and swap
// (SystemUsage), and the verdict for one device (DiskUsage).
//
// A device counts as used through everything that sits on it: a whole disk is
// mounted when one of its partitions is, and a partition is mounted when a dm
// or md device stacked on it (sysfs holders/, followed recursively) is.
//
// Threads: the parsers and assess_usage() are pure; SystemUsage::read() and
// probe_exclusive() do blocking I/O (call them off the main loop).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "disk_info.hpp"

namespace ezio {

// One line of /proc/PID/mountinfo.
struct MountEntry {
    unsigned major = 0;
    unsigned minor = 0;
    std::string root;         // path inside the filesystem that is mounted
    std::string mount_point;  // octal escapes (\040) decoded
    std::string fs_type;
    std::string source;  // "/dev/sda1", "tmpfs", ...; escapes decoded

    bool operator==(const MountEntry&) const = default;
};

// Malformed lines are skipped (the kernel writes this file; a line we cannot
// read must not hide the others).
std::vector<MountEntry> parse_mountinfo(std::string_view text);
// File names of /proc/swaps (header skipped, escapes decoded).
std::vector<std::string> parse_swaps(std::string_view text);
// udev's DEVLINKS: space-separated paths.
std::vector<std::string> split_devlinks(std::string_view devlinks);
// Decodes the kernel's octal escapes ("\040" -> ' ').
std::string unescape_octal(std::string_view field);
// Decodes udev's "\xHH" escapes (ID_MODEL_ENC) and trims trailing blanks.
std::string decode_udev_enc(std::string_view value);

// ID_FS_TYPE values that mean "member of an array or volume group".
bool is_member_fs_type(std::string_view fs_type);

// Mounts and swap of the running system, and the disks under "/".
struct SystemUsage {
    struct Mounted {
        dev_t dev = 0;
        std::string mount_point;
    };
    // Block devices with a mounted filesystem: from mountinfo's major:minor,
    // and from the mount source when it names a device node (btrfs reports
    // an anonymous 0:N device there). Read from both our own and PID 1's
    // mount namespace, so a private mount namespace hides nothing.
    std::vector<Mounted> mounts;
    // Active swap block devices.
    std::vector<dev_t> swaps;
    // Whole-disk names that hold the running system's root filesystem: the
    // device of "/", followed down through slaves/ (dm, md) to the disks.
    std::set<std::string> system_disks;
    // What "/" is mounted from, for messages ("/dev/sda2").
    std::string root_source;

    // Reads /proc/self/mountinfo, /proc/1/mountinfo (when readable) and
    // /proc/swaps; `table` maps the root device to its disks. Throws
    // Error(Failed) when /proc/self/mountinfo or /proc/swaps cannot be read:
    // without them nothing can be called safe.
    static SystemUsage read(const std::map<std::string, DiskInfo>& table);
};

// Whole-disk names below `dev`: the disk itself, or the parent of a
// partition, and for dm/md devices the disks under their slaves/. Empty when
// `dev` is not in the table (tmpfs, NFS or overlay root).
std::set<std::string> disks_below(dev_t dev, const std::map<std::string, DiskInfo>& table);

// Why one device is in use; each field is empty or a sentence naming the
// device. The first three are never overridable (writing would corrupt a
// live filesystem, the running system, or memory paged out to swap); the
// last three are overridable by `force`.
struct DiskUsage {
    std::string mounted;    // it, a partition of it, or a holder is mounted
    std::string system;     // it is on the disk holding "/"
    std::string swap;       // it, a partition of it, or a holder is active swap
    std::string holders;    // md/dm devices are stacked on it
    std::string member;     // ID_FS_TYPE says md member / LVM PV / ...
    std::string exclusive;  // open(O_EXCL) failed with EBUSY

    bool hard() const { return !mounted.empty() || !system.empty() || !swap.empty(); }
    bool any() const { return hard() || !holders.empty() || !member.empty() || !exclusive.empty(); }
    // Non-empty reasons joined with "; ".
    std::string summary() const;
};

// Returns 0 if `node` can be opened O_RDONLY|O_EXCL (and closes it at once),
// else the errno (EBUSY: someone holds it exclusively: a mount, swap, md, dm,
// or another writer).
int probe_exclusive(const std::string& node);

// The verdict for `disk`. With `probe` (usually probe_exclusive), each of the
// device and its partitions is probed for an exclusive holder; pass nullptr
// to skip probing (e.g. for devices that can never be targets).
using ExclusiveProbe = std::function<int(const std::string& node)>;
DiskUsage assess_usage(const DiskInfo& disk, const std::map<std::string, DiskInfo>& table,
                       const SystemUsage& system, const ExclusiveProbe& probe);

}  // namespace ezio
