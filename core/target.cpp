#include "target.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "error.hpp"

namespace ezio {
namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

}  // namespace

Target::Target(std::string path, int fd, bool block_device, bool writable)
    : path_(std::move(path)), fd_(fd), block_device_(block_device), writable_(writable) {}

Target::~Target() {
    // Nothing useful can be done about a close() failure here: every write
    // was already checked and flushed through flush() by the job.
    if (fd_ >= 0)
        ::close(fd_);
    if (direct_fd_ >= 0)
        ::close(direct_fd_);
}

std::optional<bool> Target::rotational() const {
    struct stat st {};
    if (!block_device_ || ::fstat(fd_, &st) != 0)
        return std::nullopt;
    const std::string dev = "/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                            std::to_string(minor(st.st_rdev));
    // A partition has no queue/ of its own: its disk is the parent directory.
    for (const char* queue : {"/queue/rotational", "/../queue/rotational"}) {
        const int fd = ::open((dev + queue).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char c = 0;
        const ssize_t n = ::read(fd, &c, 1);
        ::close(fd);
        if (n == 1 && (c == '0' || c == '1'))
            return c == '1';
    }
    return std::nullopt;
}

int Target::use_direct_io() {
    if (!block_device_)
        return ENOTBLK;
    if (direct_fd_ >= 0)
        return 0;
    int sector = 0;
    if (::ioctl(fd_, BLKSSZGET, &sector) != 0)
        return errno;
    if (sector <= 0)
        return EINVAL;
    // The same open device, not the path again: the node could have been
    // replaced meanwhile. Not O_EXCL: fd_ holds the claim.
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    const int fd = ::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0)
        return errno;
    direct_fd_ = fd;
    direct_align_ = static_cast<std::size_t>(sector);
    return 0;
}

std::shared_ptr<Target> Target::open(const std::string& path, Access access, bool allow_file) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        if (!(err == ENOENT && allow_file && access == Access::ReadWrite))
            throw Error(Errc::InvalidTarget, path + ": " + errno_text(err));
        st.st_mode = S_IFREG;
    }
    const bool block = S_ISBLK(st.st_mode);
    if (!block && !S_ISREG(st.st_mode))
        throw Error(Errc::InvalidTarget, path + " is neither a block device nor a regular file");
    if (!block && !allow_file)
        throw Error(
            Errc::InvalidTarget,
            path + " is a regular file, not a block device (use the file option for image files)");

    int flags = O_CLOEXEC;
    if (access == Access::ReadWrite) {
        flags |= O_RDWR;
        flags |= block ? O_EXCL : O_CREAT;
    } else {
        flags |= O_RDONLY;
    }
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) {
        const int err = errno;
        if (err == EBUSY)
            throw Error(Errc::TargetBusy,
                        path + " is in use (mounted, or opened exclusively by another program)");
        if (err == EROFS || err == EACCES)
            throw Error(Errc::InvalidTarget,
                        path + " cannot be opened for writing: " + errno_text(err));
        throw Error(Errc::InvalidTarget, path + ": " + errno_text(err));
    }
    auto target = std::shared_ptr<Target>(new Target(path, fd, block, access == Access::ReadWrite));

    if (block) {
        std::uint64_t bytes = 0;
        if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0)
            throw Error(Errc::InvalidTarget,
                        path + ": cannot read device size: " + errno_text(errno));
        target->size_ = bytes;
        if (access == Access::ReadWrite) {
            int ro = 0;
            if (::ioctl(fd, BLKROGET, &ro) != 0)
                throw Error(Errc::InvalidTarget,
                            path + ": cannot query read-only flag: " + errno_text(errno));
            if (ro)
                throw Error(Errc::InvalidTarget, path + " is a read-only device");
        }
    } else {
        struct stat fst {};
        if (::fstat(fd, &fst) != 0)
            throw Error(Errc::InvalidTarget, path + ": " + errno_text(errno));
        target->size_ = static_cast<std::uint64_t>(fst.st_size);
    }
    return target;
}

int Target::ensure_size(std::uint64_t size) {
    if (size <= size_)
        return 0;
    if (block_device_)
        return ENOSPC;
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
        return errno;
    size_ = size;
    return 0;
}

int Target::read_at(char* buf, std::size_t len, std::uint64_t offset) const {
    while (len > 0) {
        const ssize_t n = ::pread(fd_, buf, len, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO;  // the device ended before the extent did
        buf += n;
        len -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return 0;
}

int Target::note_written(std::size_t len) const {
    const std::uint64_t before = written_.fetch_add(len);
    if (before / kWritebackBytes == (before + len) / kWritebackBytes)
        return 0;
    // Start write-back of everything dirty so far (pages already under
    // write-back are skipped); SYNC_FILE_RANGE_WRITE alone does not wait for
    // it to complete.
    if (::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE) != 0) {
        const int err = errno;
        // The error is consumed from the file here: keep it for flush().
        if (err != EINTR) {
            int none = 0;
            flush_error_.compare_exchange_strong(none, err);
            return flush_error_.load();
        }
    }
    return 0;
}

int Target::write_at(const char* buf, std::size_t len, std::uint64_t offset) const {
    iovec one{const_cast<char*>(buf), len};
    return writev_at(&one, 1, offset);
}

int Target::writev_at(const iovec* iov, int count, std::uint64_t offset) const {
    if (count <= 0)
        return 0;
    if (count > IOV_MAX)
        return EINVAL;
    std::size_t len = 0;
    for (int i = 0; i < count; ++i)
        len += iov[i].iov_len;
    int fd = fd_;
    if (direct_fd_ >= 0) {
        const std::size_t a = direct_align_;
        bool aligned = offset % a == 0;
        for (int i = 0; aligned && i < count; ++i)
            aligned = reinterpret_cast<std::uintptr_t>(iov[i].iov_base) % a == 0 &&
                      iov[i].iov_len % a == 0;
        if (aligned)
            fd = direct_fd_;
    }
    if (fd == fd_) {
        if (const int err = note_written(len))
            return err;
    }
    // A copy to advance through on short writes.
    std::vector<iovec> left(iov, iov + count);
    std::size_t first = 0;
    while (first < left.size()) {
        const ssize_t n = ::pwritev(fd, left.data() + first, static_cast<int>(left.size() - first),
                                    static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return ENOSPC;
        offset += static_cast<std::uint64_t>(n);
        auto done = static_cast<std::size_t>(n);
        while (first < left.size() && done >= left[first].iov_len) {
            done -= left[first].iov_len;
            ++first;
        }
        if (done > 0) {
            left[first].iov_base = static_cast<char*>(left[first].iov_base) + done;
            left[first].iov_len -= done;
        }
    }
    return 0;
}

int Target::flush() const {
    if (const int err = flush_error_.load())
        return err;
    while (::fdatasync(fd_) != 0) {
        const int err = errno;
        if (err == EINTR)
            continue;
        int none = 0;
        flush_error_.compare_exchange_strong(none, err);
        return flush_error_.load();
    }
    return 0;
}

int Target::drop_cache(std::uint64_t offset, std::uint64_t len) const {
    // posix_fadvise returns the error instead of setting errno.
    return ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                           POSIX_FADV_DONTNEED);
}

}  // namespace ezio
