// Internal to the disk_* sources of ezio-core: the libudev glue they share.
// Not for eziod or ezioctl, which see only DiskInfo (libudev types stay out
// of every public header; ezio-core links libudev privately).
#pragma once

#include <map>
#include <string>

#include "disk_info.hpp"

struct udev;
struct udev_device;

namespace ezio {

struct SystemUsage;

namespace detail {

// An owned libudev context. One per thread: libudev objects are not
// thread-safe.
class UdevContext {
  public:
    UdevContext();  // throws Error(Failed)
    ~UdevContext();
    UdevContext(const UdevContext&) = delete;
    UdevContext& operator=(const UdevContext&) = delete;
    udev* get() const { return udev_; }

  private:
    udev* udev_;
};

// DiskInfo of one device, without partitions/inheritance/in-use.
DiskInfo disk_from_udev(udev_device* dev);
// Fills partitions of disks and what partitions inherit from their disk.
void link_partitions(std::map<std::string, DiskInfo>& table);
// All "disk" and "partition" block devices, linked. Throws Error(Failed).
std::map<std::string, DiskInfo> read_disk_table(udev* u);
// disk_is_listed(), and for a partition also its disk (a loop device's
// partitions outlive its detach by a moment).
bool listed_in(const DiskInfo& d, const std::map<std::string, DiskInfo>& table);
// Sets d.in_use_reason; probes exclusive opens only for possible targets.
void fill_in_use(DiskInfo& d, const std::map<std::string, DiskInfo>& table,
                 const SystemUsage& system, bool probe_exclusive);

}  // namespace detail
}  // namespace ezio
