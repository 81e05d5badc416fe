#include "disk_object.hpp"

#include <systemd/sd-bus.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "error.hpp"
#include "log.hpp"

namespace ezio::daemon {
namespace {

constexpr const char* kDiskPathPrefix = "/org/ezio/Ezio1/disk";

// Links come from udev's DEVLINKS in no particular order; the bus shows
// them sorted so that a reordering alone is no change.
DiskInfo normalized(DiskInfo disk) {
    std::sort(disk.by_id.begin(), disk.by_id.end());
    std::sort(disk.by_path.begin(), disk.by_path.end());
    std::sort(disk.partitions.begin(), disk.partitions.end());
    return disk;
}

}  // namespace

std::string disk_object_path(const std::string& name) {
    char* path = nullptr;
    const int r = sd_bus_path_encode(kDiskPathPrefix, name.c_str(), &path);
    if (r < 0)
        throw Error(Errc::Failed,
                    "cannot make an object path for disk '" + name + "': " + std::strerror(-r));
    std::string out(path);
    std::free(path);
    return out;
}

DiskObject::DiskObject(sdbus::IConnection& bus, const DiskInfo& disk)
    : AdaptorInterfaces(bus, disk_object_path(disk.name)), disk_(normalized(disk)) {
    registerAdaptor();
    emitInterfacesAddedSignal();
}

DiskObject::~DiskObject() {
    try {
        emitInterfacesRemovedSignal();
    } catch (const sdbus::Error& e) {
        // The bus may be gone at shutdown; the object goes away regardless.
        log::debug("InterfacesRemoved for " + getObjectPath() + ": " + e.getMessage());
    }
    unregisterAdaptor();
}

void DiskObject::update(const DiskInfo& disk) {
    const DiskInfo old = std::exchange(disk_, normalized(disk));
    const DiskInfo& now = disk_;
    std::vector<std::string> changed;
    auto check = [&](bool differs, const char* name) {
        if (differs)
            changed.emplace_back(name);
    };
    // Name, Device, IsPartition and Parent are const: a device that changes
    // them is a new device (the monitor reports Removed, then Added).
    check(old.size != now.size, "Size");
    check(old.model != now.model, "Model");
    check(old.serial != now.serial, "Serial");
    check(old.bus != now.bus, "Bus");
    check(old.by_id != now.by_id, "ById");
    check(old.by_path != now.by_path, "ByPath");
    check(old.removable != now.removable, "Removable");
    check(old.read_only != now.read_only, "ReadOnly");
    check(old.partitions != now.partitions, "Partitions");
    check(old.fs_type != now.fs_type, "FilesystemType");
    check(old.in_use() != now.in_use(), "InUse");
    check(old.in_use_reason != now.in_use_reason, "InUseReason");
    check(old.ignore != now.ignore, "Ignored");
    check(old.autodeploy != now.autodeploy, "AutoDeploy");
    check(old.eligible() != now.eligible(), "Eligible");
    if (changed.empty())
        return;
    getObject().emitPropertiesChangedSignal(org::ezio::Ezio1::Disk_adaptor::INTERFACE_NAME,
                                            changed);
}

std::string DiskObject::Name() {
    return disk_.name;
}
std::string DiskObject::Device() {
    return disk_.node;
}
uint64_t DiskObject::Size() {
    return disk_.size;
}
std::string DiskObject::Model() {
    return disk_.model;
}
std::string DiskObject::Serial() {
    return disk_.serial;
}
std::string DiskObject::Bus() {
    return disk_.bus;
}
std::vector<std::string> DiskObject::ById() {
    return disk_.by_id;
}
std::vector<std::string> DiskObject::ByPath() {
    return disk_.by_path;
}
bool DiskObject::Removable() {
    return disk_.removable;
}
bool DiskObject::ReadOnly() {
    return disk_.read_only;
}
bool DiskObject::IsPartition() {
    return disk_.is_partition;
}
std::string DiskObject::Parent() {
    return disk_.parent;
}
std::vector<std::string> DiskObject::Partitions() {
    return disk_.partitions;
}
std::string DiskObject::FilesystemType() {
    return disk_.fs_type;
}
bool DiskObject::InUse() {
    return disk_.in_use();
}
std::string DiskObject::InUseReason() {
    return disk_.in_use_reason;
}
bool DiskObject::Ignored() {
    return disk_.ignore;
}
bool DiskObject::AutoDeploy() {
    return disk_.autodeploy;
}
bool DiskObject::Eligible() {
    return disk_.eligible();
}

}  // namespace ezio::daemon
