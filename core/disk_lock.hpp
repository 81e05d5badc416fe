// WholeDiskLock: keeps udev away from a disk while an image is written to it,
// and asks for a rescan when done.
//
// systemd-udevd skips probing (blkid, partition scan) of a block device whose
// whole-disk node is flock()ed; a writer that holds LOCK_EX therefore sees no
// probe read half-written metadata, and no watch-triggered rescan races the
// write. On release, a "change" uevent makes udev probe the new filesystem;
// for a whole-disk image the kernel is first asked to re-read the partition
// table (BLKRRPART).
//
// Usage in a deploy job:
//     auto t = check_target(arg, end, is_partition, force);
//     WholeDiskLock lock(t.whole_disk_node);
//     ... open the target O_EXCL, write, flush, close it ...
//     lock.release_and_rescan(t.name, /*reread_partitions=*/!t.disk.is_partition);
//
// Threads: a lock belongs to whoever holds it; blocking calls (open, flock
// retries, sysfs writes) — use it on a job's thread, not the main loop.
#pragma once

#include <chrono>
#include <string>

namespace ezio {

class WholeDiskLock {
  public:
    // Opens `whole_disk_node` (O_RDONLY|O_CLOEXEC|O_NONBLOCK) and takes
    // flock(LOCK_EX|LOCK_NB), retrying every 50 ms for up to `wait` (udevd
    // holds LOCK_SH briefly while it probes). Throws
    // Error(TargetBusy) when still locked after `wait` (another writer, or
    // udev stuck), Error(InvalidTarget) when the node cannot be opened.
    explicit WholeDiskLock(std::string whole_disk_node,
                           std::chrono::milliseconds wait = std::chrono::seconds(5));
    // Drops a lock still held, without a rescan. Errors here cannot be
    // reported: call release() or release_and_rescan() to see them.
    ~WholeDiskLock();
    WholeDiskLock(WholeDiskLock&& other) noexcept;
    WholeDiskLock& operator=(WholeDiskLock&& other) noexcept;
    WholeDiskLock(const WholeDiskLock&) = delete;
    WholeDiskLock& operator=(const WholeDiskLock&) = delete;

    const std::string& node() const { return node_; }
    bool held() const { return fd_ >= 0; }

    // Unlocks and closes. Throws Error(Failed) if unlock or close fails (the
    // descriptor is gone either way). No-op when not held.
    void release();

    // With `reread_partitions`, BLKRRPART on the whole disk while still
    // locked (EINVAL, a device that cannot be partitioned, is not an
    // error); then release(); then a "change" uevent for `target_name`
    // (kernel name, "sda1"), or for the whole disk when empty. Every step
    // runs even if an earlier one failed; the first failure is then thrown
    // as Error(Failed) naming the step. The image itself is already written
    // by then: a failure means only that udev may show stale information.
    void release_and_rescan(const std::string& target_name, bool reread_partitions);

  private:
    std::string node_;
    int fd_ = -1;
};

// Writes "change" to /sys/class/block/NAME/uevent, which makes the kernel
// send a change uevent (udevd then re-probes the device). Throws
// Error(Failed) naming the device and errno.
void trigger_change_event(const std::string& name);

}  // namespace ezio
