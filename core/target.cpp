#include "target.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.hpp"

namespace ezio {
namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

}  // namespace

Target::Target(std::string path, int fd, bool block_device, std::uint64_t size)
    : path_(std::move(path)), fd_(fd), block_device_(block_device), size_(size) {}

Target::~Target() {
    // Nothing useful can be done about a close() failure here: every write
    // was already checked and flushed through flush() by the job.
    if (fd_ >= 0)
        ::close(fd_);
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
    auto target = std::shared_ptr<Target>(new Target(path, fd, block, 0));

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

int Target::write_at(const char* buf, std::size_t len, std::uint64_t offset) const {
    const std::uint64_t before = written_.fetch_add(len);
    if (before / kWritebackBytes != (before + len) / kWritebackBytes) {
        // Start write-back of everything dirty so far (pages already under
        // write-back are skipped); SYNC_FILE_RANGE_WRITE alone does not wait
        // for it to complete.
        if (::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE) != 0) {
            const int err = errno;
            // The error is consumed from the file here: keep it for flush().
            if (err != EINTR) {
                int none = 0;
                flush_error_.compare_exchange_strong(none, err);
                return flush_error_.load();
            }
        }
    }
    while (len > 0) {
        const ssize_t n = ::pwrite(fd_, buf, len, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return ENOSPC;
        buf += n;
        len -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
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
