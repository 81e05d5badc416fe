#include "disk_info.hpp"

#include <dirent.h>
#include <libudev.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "disk_udev.hpp"
#include "disk_usage.hpp"
#include "error.hpp"

namespace ezio {
namespace {

std::string trimmed(const char* s) {
    if (!s)
        return {};
    std::string out(s);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\t'))
        out.pop_back();
    std::size_t start = 0;
    while (start < out.size() && (out[start] == ' ' || out[start] == '\t'))
        ++start;
    return out.substr(start);
}

std::string prop(udev_device* dev, const char* key) {
    return trimmed(udev_device_get_property_value(dev, key));
}

std::string attr(udev_device* dev, const char* key) {
    return trimmed(udev_device_get_sysattr_value(dev, key));
}

std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> out;
    DIR* dir = ::opendir(path.c_str());
    if (!dir)
        return out;
    while (dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.')
            continue;
        out.emplace_back(e->d_name);
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end());
    return out;
}

// sysfs attribute of the device behind the block device (SCSI/ATA "model",
// NVMe "model"/"serial"), when udev rules have not named it.
std::string device_attr(udev_device* dev, const char* key) {
    return trimmed(udev_device_get_sysattr_value(dev, (std::string("device/") + key).c_str()));
}

bool truthy(const std::string& v) {
    return v == "1" || v == "yes" || v == "true" || v == "y";
}

}  // namespace

namespace detail {

UdevContext::UdevContext() : udev_(udev_new()) {
    if (!udev_)
        throw Error(Errc::Failed, std::string("cannot create a libudev context: ") +
                                      std::strerror(errno ? errno : ENOMEM));
}

UdevContext::~UdevContext() {
    udev_unref(udev_);
}

DiskInfo disk_from_udev(udev_device* dev) {
    DiskInfo d;
    d.name = trimmed(udev_device_get_sysname(dev));
    d.node = trimmed(udev_device_get_devnode(dev));
    d.syspath = trimmed(udev_device_get_syspath(dev));
    d.devnum = udev_device_get_devnum(dev);
    d.is_partition = trimmed(udev_device_get_devtype(dev)) == "partition";

    for (udev_list_entry* e = udev_device_get_properties_list_entry(dev); e;
         e = udev_list_entry_get_next(e)) {
        const char* value = udev_list_entry_get_value(e);
        d.properties[udev_list_entry_get_name(e)] = value ? value : "";
    }

    const std::string size = attr(dev, "size");
    if (!size.empty()) {
        char* end = nullptr;
        const unsigned long long sectors = std::strtoull(size.c_str(), &end, 10);
        // sysfs "size" is always in 512-byte units, whatever the block size.
        if (end && *end == '\0')
            d.size = static_cast<std::uint64_t>(sectors) * 512;
    }
    d.read_only = attr(dev, "ro") == "1";
    d.removable = attr(dev, "removable") == "1";

    const std::string model_enc = prop(dev, "ID_MODEL_ENC");
    d.model = !model_enc.empty() ? decode_udev_enc(model_enc) : prop(dev, "ID_MODEL");
    if (d.model.empty() && !d.is_partition)
        d.model = device_attr(dev, "model");
    d.serial = prop(dev, "ID_SERIAL_SHORT");
    if (d.serial.empty())
        d.serial = prop(dev, "ID_SERIAL");
    if (d.serial.empty() && !d.is_partition)
        d.serial = device_attr(dev, "serial");
    d.bus = prop(dev, "ID_BUS");
    for (auto& link : split_devlinks(prop(dev, "DEVLINKS"))) {
        if (link.starts_with("/dev/disk/by-id/"))
            d.by_id.push_back(link);
        else if (link.starts_with("/dev/disk/by-path/"))
            d.by_path.push_back(link);
    }
    std::sort(d.by_id.begin(), d.by_id.end());
    std::sort(d.by_path.begin(), d.by_path.end());
    d.fs_type = prop(dev, "ID_FS_TYPE");
    d.ignore = truthy(prop(dev, "EZIO_IGNORE"));
    d.autodeploy = truthy(prop(dev, "EZIO_AUTODEPLOY"));

    if (d.is_partition) {
        if (udev_device* parent =
                udev_device_get_parent_with_subsystem_devtype(dev, "block", "disk"))
            d.parent = trimmed(udev_device_get_sysname(parent));
    }
    if (!d.syspath.empty()) {
        d.holders = list_dir(d.syspath + "/holders");
        d.slaves = list_dir(d.syspath + "/slaves");
    }
    return d;
}

void link_partitions(std::map<std::string, DiskInfo>& table) {
    for (auto& [name, d] : table)
        if (!d.is_partition)
            d.partitions.clear();
    for (auto& [name, d] : table) {
        if (!d.is_partition)
            continue;
        auto it = table.find(d.parent);
        if (it == table.end())
            continue;
        DiskInfo& disk = it->second;
        disk.partitions.push_back(name);
        // A partition is as removable and as read-only as its disk, and an
        // ignored disk has no partition that may be written.
        d.removable = disk.removable;
        d.read_only = d.read_only || disk.read_only;
        d.ignore = d.ignore || disk.ignore;
        if (d.model.empty())
            d.model = disk.model;
        if (d.serial.empty())
            d.serial = disk.serial;
        if (d.bus.empty())
            d.bus = disk.bus;
    }
    for (auto& [name, d] : table)
        std::sort(d.partitions.begin(), d.partitions.end());
}

std::map<std::string, DiskInfo> read_disk_table(udev* u) {
    std::unique_ptr<udev_enumerate, decltype(&udev_enumerate_unref)> en(udev_enumerate_new(u),
                                                                        &udev_enumerate_unref);
    if (!en)
        throw Error(Errc::Failed, "cannot enumerate block devices: out of memory");
    int r = udev_enumerate_add_match_subsystem(en.get(), "block");
    if (r >= 0)
        r = udev_enumerate_scan_devices(en.get());
    if (r < 0)
        throw Error(Errc::Failed,
                    std::string("cannot enumerate block devices: ") + std::strerror(-r));

    std::map<std::string, DiskInfo> table;
    for (udev_list_entry* e = udev_enumerate_get_list_entry(en.get()); e;
         e = udev_list_entry_get_next(e)) {
        std::unique_ptr<udev_device, decltype(&udev_device_unref)> dev(
            udev_device_new_from_syspath(u, udev_list_entry_get_name(e)), &udev_device_unref);
        if (!dev)
            continue;  // gone between the scan and now
        const std::string type = trimmed(udev_device_get_devtype(dev.get()));
        if (type != "disk" && type != "partition")
            continue;
        DiskInfo d = disk_from_udev(dev.get());
        if (d.name.empty())
            continue;
        table.emplace(d.name, std::move(d));
    }
    link_partitions(table);
    return table;
}

void fill_in_use(DiskInfo& d, const std::map<std::string, DiskInfo>& table,
                 const SystemUsage& system, bool probe) {
    // Probe only devices that could be targets: an exclusive open of a
    // device we would never write is a needless race with its real users.
    DiskUsage u = assess_usage(d, table, system, nullptr);
    if (probe && !u.hard() && !d.ignore && !d.read_only && d.size > 0)
        u = assess_usage(d, table, system, probe_exclusive);
    d.in_use_reason = u.summary();
}

bool listed_in(const DiskInfo& d, const std::map<std::string, DiskInfo>& table) {
    if (!disk_is_listed(d))
        return false;
    if (!d.is_partition)
        return true;
    auto it = table.find(d.parent);
    return it != table.end() && disk_is_listed(it->second);
}

}  // namespace detail

bool disk_is_listed(const DiskInfo& d) {
    if (d.size == 0 || d.name.empty())
        return false;
    if (d.name.starts_with("ram") || d.name.starts_with("zram"))
        return false;
    // No device node: a hidden device (an NVMe multipath path).
    return !d.node.empty();
}

std::map<std::string, DiskInfo> read_disk_table() {
    detail::UdevContext u;
    return detail::read_disk_table(u.get());
}

std::vector<DiskInfo> enumerate_disks() {
    detail::UdevContext u;
    auto table = detail::read_disk_table(u.get());
    const SystemUsage system = SystemUsage::read(table);
    std::vector<DiskInfo> out;
    for (auto& [name, d] : table) {
        if (!detail::listed_in(d, table))
            continue;
        DiskInfo copy = d;
        detail::fill_in_use(copy, table, system, true);
        out.push_back(std::move(copy));
    }
    return out;
}

DiskInfo describe_disk(const std::string& name_or_node) {
    if (name_or_node.empty())
        throw Error(Errc::NotFound, "no device named");
    std::string name = name_or_node;
    if (name_or_node.find('/') != std::string::npos) {
        struct stat st {};
        if (::stat(name_or_node.c_str(), &st) != 0)
            throw Error(Errc::NotFound, name_or_node + ": " + std::strerror(errno));
        if (!S_ISBLK(st.st_mode))
            throw Error(Errc::NotFound, name_or_node + " is not a block device");
        detail::UdevContext u;
        std::unique_ptr<udev_device, decltype(&udev_device_unref)> dev(
            udev_device_new_from_devnum(u.get(), 'b', st.st_rdev), &udev_device_unref);
        if (!dev)
            throw Error(Errc::NotFound, name_or_node + " is not known to sysfs");
        name = trimmed(udev_device_get_sysname(dev.get()));
    }
    detail::UdevContext u;
    auto table = detail::read_disk_table(u.get());
    auto it = table.find(name);
    if (it == table.end())
        throw Error(Errc::NotFound, "no such block device: " + name_or_node);
    const SystemUsage system = SystemUsage::read(table);
    DiskInfo d = it->second;
    detail::fill_in_use(d, table, system, true);
    return d;
}

}  // namespace ezio
