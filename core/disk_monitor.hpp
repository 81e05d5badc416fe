// DiskMonitor: disks and partitions coming, changing and going, for the
// owner's poll loop, with all probing done on a worker thread.
//
// Threads:
//   - The constructor (on the owner's thread) opens the netlink monitor, so a
//     failure to listen is thrown right there, then starts the worker.
//   - The worker thread owns the libudev monitor. It does the slow part:
//     reading sysfs and the udev database, /proc/self/mountinfo and
//     /proc/swaps. It never opens a device: an exclusive-open probe on
//     every uevent could make a concurrent mkfs or mount fail as busy, so
//     exclusive holders are found at deploy time (check_target, then our
//     own O_EXCL open). It queues DiskEvents and makes fd() readable.
//   - The owner (one thread at a time, e.g. the sd-event/sdbus main loop)
//     polls fd() for POLLIN and calls read_events(), which never blocks.
//   - The destructor (owner's thread) stops and joins the worker.
//
// What is reported:
//   - First, one Added per listed device present at start (disk_is_listed):
//     the owner needs no separate enumeration and there is no gap between
//     the two.
//   - Added when a device becomes listed (hot-plug, loop attach — a loop
//     device exists detached with size 0, and attaching is a "change"),
//     Removed when it stops being listed (unplug, loop detach, medium
//     removed), with the last DiskInfo it had.
//   - Changed for every uevent on a listed device (e.g. after
//     WholeDiskLock::release_and_rescan), and when a mount or swap change
//     alters its in_use_reason (/proc/self/mountinfo and /proc/swaps are
//     watched; mounting sends no uevent).
// Events of one device keep their order. After a netlink buffer overrun the
// worker re-reads everything and reports the difference.
//
// Source: the "udev" netlink group (events after udevd's rules ran, with
// ID_* and EZIO_* properties) when udevd runs (/run/udev/control exists),
// else the "kernel" group (raw kernel uevents: loop attach/detach and
// hot-plug are still seen, without udev properties).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "disk_info.hpp"

namespace ezio {

struct DiskEvent {
    enum class Kind { Added, Changed, Removed };
    Kind kind = Kind::Added;
    DiskInfo disk;
};

std::string_view disk_event_kind_name(DiskEvent::Kind kind);  // "added", ...

class DiskMonitor {
  public:
    enum class Source { Auto, Udev, Kernel };

    // Throws Error(Failed) when libudev or the netlink socket cannot be set
    // up (e.g. the kernel group without privileges), or when eventfd fails.
    explicit DiskMonitor(Source source = Source::Auto);
    ~DiskMonitor();
    DiskMonitor(const DiskMonitor&) = delete;
    DiskMonitor& operator=(const DiskMonitor&) = delete;

    // Readable (POLLIN) when read_events() has something. Owned by the
    // monitor; do not close it.
    int fd() const;
    // Every event queued so far, oldest first; empty if none (never blocks).
    // If the worker stopped on an error, that error is thrown here (as
    // ezio::Error), once all events queued before it were returned.
    std::vector<DiskEvent> read_events();
    // True when listening to udevd's events, false for raw kernel uevents.
    bool uses_udev() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ezio
