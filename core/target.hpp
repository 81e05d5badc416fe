// A deployment target or seed source: one open file descriptor over a block
// device or a regular file, with positional I/O that loops on short transfers.
//
// Thread-safety: read_at/write_at/flush may be called from any thread at once
// (pread/pwrite carry their own offsets). The descriptor closes when the last
// shared_ptr goes away, i.e. after the last in-flight I/O job is done.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

struct iovec;

namespace ezio {

class Target {
  public:
    enum class Access { ReadOnly, ReadWrite };

    // Opens `path`. Block devices are opened O_EXCL when written, so a
    // mounted or otherwise claimed device is refused (Errc::TargetBusy) and
    // nobody else can claim it while we write. A regular file is accepted
    // only with allow_file; written files are created if missing. Throws
    // ezio::Error: InvalidTarget (missing, wrong type, read-only device),
    // TargetBusy (EBUSY).
    static std::shared_ptr<Target> open(const std::string& path, Access access, bool allow_file);

    ~Target();
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    const std::string& path() const { return path_; }
    bool is_block_device() const { return block_device_; }
    std::uint64_t size() const { return size_; }
    int fd() const { return fd_; }
    // Opened for writing (Access::ReadWrite).
    bool writable() const { return writable_; }

    // Sends the writes that the device can take without its page cache
    // (offset, length and buffer addresses aligned to its logical block
    // size) through a second descriptor opened O_DIRECT; others stay
    // buffered. Saves a copy per byte and the write-back of the page cache;
    // meant for devices with fast random writes (the engine asks for it on
    // non-rotational disks). Block devices only; 0 or an errno value.
    int use_direct_io();
    bool direct_io() const { return direct_fd_ >= 0; }
    // The kernel's queue/rotational flag of the device (of its disk, for a
    // partition): true for spinning disks, false for SSDs, NVMe, loop
    // devices; nullopt when unknown (not a block device, no sysfs).
    std::optional<bool> rotational() const;

    // Makes a regular-file target at least `size` bytes long (sparse).
    // Returns 0 or an errno value. A block device must already be that big.
    int ensure_size(std::uint64_t size);

    // Positional I/O. Return 0 or an errno value (EIO for an unexpected end
    // of device on read, ENOSPC on a zero-length write).
    int read_at(char* buf, std::size_t len, std::uint64_t offset) const;
    // Every kWritebackBytes written, write_at also starts write-back of the
    // dirty pages (sync_file_range, not waiting), so they trickle to the
    // device during the transfer and the final flush() is short. A
    // write-back error is kept as flush()'s error and returned at once.
    int write_at(const char* buf, std::size_t len, std::uint64_t offset) const;
    // The same for the buffers of `iov` (at most IOV_MAX), written back to
    // back from `offset` with pwritev(); short writes are continued. With
    // use_direct_io(), aligned writes skip the page cache.
    int writev_at(const iovec* iov, int count, std::uint64_t offset) const;
    static constexpr std::uint64_t kWritebackBytes = 64ull << 20;
    // fdatasync(); 0 or errno. A failure sticks: every later call returns
    // the first error without syncing again, because the kernel reports a
    // lost write-back only once per open file and a second fdatasync() would
    // claim a durability the device does not have.
    int flush() const;
    // Drops the clean cached pages of [offset, offset + len) (len 0: to the
    // end), so that later reads come from the device, not from memory.
    // Dirty pages stay; flush() first. Returns 0 or an errno value.
    int drop_cache(std::uint64_t offset, std::uint64_t len) const;

  private:
    // Starts write-back each time written_ crosses a kWritebackBytes line.
    int note_written(std::size_t len) const;
    Target(std::string path, int fd, bool block_device, bool writable);
    std::string path_;
    int fd_;
    int direct_fd_ = -1;            // O_DIRECT descriptor of the same device, or -1
    std::size_t direct_align_ = 0;  // its logical block size
    bool block_device_;
    bool writable_;
    std::uint64_t size_ = 0;
    mutable std::atomic<int> flush_error_{0};        // first fdatasync() errno, 0 if none
    mutable std::atomic<std::uint64_t> written_{0};  // bytes written, for write-back
};

}  // namespace ezio
