// DuplicatorMatch: which newly appearing disks the hot-plug duplicator
// deploys to. Data only: eziod reads it from its config and asks matches()
// for every DiskMonitor "added" event; check_target() still has the last
// word before anything is written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "disk_info.hpp"

namespace ezio {

struct DuplicatorMatch {
    // "KEY=VALUE": the udev property KEY must exist and match VALUE, an
    // fnmatch(3) glob ("EZIO_AUTODEPLOY=1", "ID_MODEL=Samsung*").
    std::optional<std::string> property;
    // fnmatch(3) glob against the device's by-path links, either the whole
    // link ("/dev/disk/by-path/pci-0000:00:1f.2-ata-*") or the part after
    // /dev/disk/by-path/ ("pci-0000:00:1f.2-ata-*"). A glob without '*' at
    // its end does not match partitions' "-partN" links.
    std::optional<std::string> by_path;
    // Inclusive size bounds in bytes.
    std::optional<std::uint64_t> min_size;
    std::optional<std::uint64_t> max_size;
    // Whole disks only by default: a disk plugged with old partitions would
    // otherwise be claimed twice (the disk and each partition).
    bool partitions = false;

    // A match must name a property or a by-path slot: a size range alone
    // would claim any disk someone plugs in. Throws Error(InvalidArgs).
    void validate() const;

    // True when every criterion given holds. Never true for an invalid
    // match, an ignored disk (EZIO_IGNORE=1), or a disk with no medium.
    bool matches(const DiskInfo& disk) const;

    // "property EZIO_AUTODEPLOY=1, by-path pci-*-ata-*, size >= 1073741824"
    std::string describe() const;
};

}  // namespace ezio
