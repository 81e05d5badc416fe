// One block device on the bus: /org/ezio/Ezio1/disk/NAME with
// org.ezio.Ezio1.Disk (dbus/org.ezio.Ezio1.Disk.xml).
//
// Properties are served from the last DiskInfo the DiskMonitor reported;
// update() emits PropertiesChanged for the properties that changed and
// nothing else. Registration emits InterfacesAdded and destruction
// InterfacesRemoved, through the ObjectManager on /org/ezio/Ezio1.
//
// Threading: main thread only. Lifetime: owned by DiskManager.
#pragma once

#include <ezio-dbus/disk_adaptor.hpp>

#include <sdbus-c++/sdbus-c++.h>

#include <string>
#include <vector>

#include "disk_info.hpp"

namespace ezio::daemon {

// "/org/ezio/Ezio1/disk/" + the kernel name escaped as sd_bus_path_encode(3)
// does ("dm-0" -> "dm_2d0"). Throws ezio::Error(Failed) if encoding fails.
std::string disk_object_path(const std::string& name);

class DiskObject final : public sdbus::AdaptorInterfaces<org::ezio::Ezio1::Disk_adaptor,
                                                         sdbus::ManagedObject_adaptor> {
  public:
    DiskObject(sdbus::IConnection& bus, const DiskInfo& disk);
    ~DiskObject();

    const DiskInfo& disk() const { return disk_; }

    // Emits PropertiesChanged for what differs from the last DiskInfo.
    void update(const DiskInfo& disk);

  private:
    std::string Name() override;
    std::string Device() override;
    uint64_t Size() override;
    std::string Model() override;
    std::string Serial() override;
    std::string Bus() override;
    std::vector<std::string> ById() override;
    std::vector<std::string> ByPath() override;
    bool Removable() override;
    bool ReadOnly() override;
    bool IsPartition() override;
    std::string Parent() override;
    std::vector<std::string> Partitions() override;
    std::string FilesystemType() override;
    bool InUse() override;
    std::string InUseReason() override;
    bool Ignored() override;
    bool AutoDeploy() override;
    bool Eligible() override;

    DiskInfo disk_;  // links sorted
};

}  // namespace ezio::daemon
