// What eziod knows about one block device (disk or partition), read through
// libudev from sysfs and, when systemd-udevd runs, from the udev database.
//
// Without udevd only the kernel's view exists: node, size, read-only,
// removable, partitions, holders. Everything udev rules compute (model and
// serial from ID_*, by-id/by-path links, ID_FS_TYPE, EZIO_IGNORE,
// EZIO_AUTODEPLOY) is then empty, except model/serial that sysfs itself
// exposes for SCSI/ATA/NVMe devices.
//
// Threads: every function here is blocking file-system work (sysfs, /proc,
// and for in-use detection an open(2) of each candidate device). Call them
// off the main loop (DiskMonitor does, on its worker thread). Each call makes
// its own libudev context, so calls on different threads are independent.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ezio {

struct DiskInfo {
    std::string name;                  // kernel name: "sda1", "loop3", "nvme0n1p2"
    std::string node;                  // "/dev/sda1"
    std::string syspath;               // "/sys/devices/.../block/sda/sda1"
    dev_t devnum = 0;                  // major:minor
    std::uint64_t size = 0;            // bytes; 0 = no medium / unattached loop
    std::string model;                 // ID_MODEL_ENC (decoded), ID_MODEL, or sysfs device/model
    std::string serial;                // ID_SERIAL_SHORT, ID_SERIAL, or sysfs device/serial
    std::string bus;                   // ID_BUS ("ata", "usb", "scsi", ...)
    std::vector<std::string> by_id;    // "/dev/disk/by-id/..." links from DEVLINKS
    std::vector<std::string> by_path;  // "/dev/disk/by-path/..." links from DEVLINKS
    bool removable = false;            // sysfs "removable" of the whole disk
    bool read_only = false;            // sysfs "ro" of the device or of its whole disk
    bool is_partition = false;
    std::string parent;                   // whole-disk name of a partition; "" for a disk
    std::vector<std::string> partitions;  // partition names of a disk, sorted
    std::vector<std::string> holders;     // sysfs holders/ (md, dm stacked on top)
    std::vector<std::string> slaves;      // sysfs slaves/ (what a dm/md device sits on)
    std::string fs_type;                  // ID_FS_TYPE ("ext4", "LVM2_member", ...)
    // EZIO_IGNORE=1 on the device or on its whole disk: never a target.
    bool ignore = false;
    // EZIO_AUTODEPLOY=1 on the device (duplicator slot).
    bool autodeploy = false;
    // Every udev property of the device (kernel uevent + udev database).
    std::map<std::string, std::string> properties;
    // Why the device (or a partition of it, or something stacked on it) is in
    // use; empty when free. See disk_usage.hpp for the checks.
    std::string in_use_reason;

    bool in_use() const { return !in_use_reason.empty(); }
    // Name of the whole disk this device belongs to (itself for a disk).
    const std::string& whole_disk() const { return is_partition ? parent : name; }
    // Could be offered as a deployment target at all: not ignored, not
    // read-only, has a medium, not in use. check_target() decides for real.
    bool eligible() const { return !ignore && !read_only && size > 0 && !in_use(); }

    bool operator==(const DiskInfo&) const = default;
};

// Whether a device shows up in enumerate_disks()/DiskMonitor: a "disk" or
// "partition" with a size, that is not a RAM disk (ram*, zram*) nor hidden
// (NVMe multipath paths). Unattached loop devices have size 0 and are left
// out; attached ones are listed.
bool disk_is_listed(const DiskInfo& disk);

// Every listed disk and partition, with in-use detection done (including an
// exclusive-open probe of devices that could be targets). Sorted by name.
std::vector<DiskInfo> enumerate_disks();

// One device by kernel name ("sda1") or device node ("/dev/sda1", symlinks
// resolved), in-use detection done. It need not be listed (a size-0 loop is
// described). Throws Error(NotFound) when there is no such block device.
DiskInfo describe_disk(const std::string& name_or_node);

// Every block device sysfs knows (listed or not), keyed by name, without
// in-use detection: the raw material for disk_usage.hpp. Partitions carry
// their parent's removable/read-only/ignore/model/serial/bus where they have
// none of their own.
std::map<std::string, DiskInfo> read_disk_table();

}  // namespace ezio
