#include "disk_lock.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "error.hpp"

namespace ezio {
namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

std::string basename_of(const std::string& node) {
    const auto slash = node.rfind('/');
    return slash == std::string::npos ? node : node.substr(slash + 1);
}

}  // namespace

WholeDiskLock::WholeDiskLock(std::string whole_disk_node, std::chrono::milliseconds wait)
    : node_(std::move(whole_disk_node)) {
    const int fd = ::open(node_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        throw Error(Errc::InvalidTarget,
                    "cannot open " + node_ + " to lock it: " + errno_text(errno));
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        const int err = errno;
        if (err == EINTR)
            continue;
        if (err != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
            ::close(fd);
            if (err == EWOULDBLOCK)
                throw Error(Errc::TargetBusy,
                            node_ +
                                " is locked by another program (udev probing it, or another "
                                "writer)");
            throw Error(Errc::Failed, "cannot lock " + node_ + ": " + errno_text(err));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    fd_ = fd;
}

WholeDiskLock::~WholeDiskLock() {
    if (fd_ >= 0)
        ::close(fd_);  // closing drops the flock
}

WholeDiskLock::WholeDiskLock(WholeDiskLock&& other) noexcept
    : node_(std::move(other.node_)), fd_(other.fd_) {
    other.fd_ = -1;
}

WholeDiskLock& WholeDiskLock::operator=(WholeDiskLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        node_ = std::move(other.node_);
        fd_ = other.fd_;
        other.fd_ = -1;
    }
    return *this;
}

void WholeDiskLock::release() {
    if (fd_ < 0)
        return;
    const int fd = fd_;
    fd_ = -1;
    std::string failure;
    if (::flock(fd, LOCK_UN) != 0)
        failure = "cannot unlock " + node_ + ": " + errno_text(errno);
    if (::close(fd) != 0 && failure.empty())
        failure = "cannot close " + node_ + ": " + errno_text(errno);
    if (!failure.empty())
        throw Error(Errc::Failed, failure);
}

void WholeDiskLock::release_and_rescan(const std::string& target_name, bool reread_partitions) {
    std::optional<Error> first;
    if (reread_partitions && fd_ >= 0) {
        // EINVAL: the device cannot carry partitions (e.g. a loop device
        // attached without partition scanning); nothing to re-read.
        if (::ioctl(fd_, BLKRRPART) != 0 && errno != EINVAL)
            first.emplace(Errc::Failed, "cannot re-read the partition table of " + node_ + ": " +
                                            errno_text(errno));
    }
    try {
        release();
    } catch (const Error& e) {
        if (!first)
            first = e;
    }
    try {
        trigger_change_event(target_name.empty() ? basename_of(node_) : target_name);
    } catch (const Error& e) {
        if (!first)
            first = e;
    }
    if (first)
        throw *first;
}

void trigger_change_event(const std::string& name) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw Error(Errc::Failed, "cannot send a change event: bad device name '" + name + "'");
    const std::string path = "/sys/class/block/" + name + "/uevent";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        throw Error(Errc::Failed, "cannot send a change event for " + name + ": " + path + ": " +
                                      errno_text(errno));
    static const char kChange[] = "change";
    const ssize_t n = ::write(fd, kChange, sizeof kChange - 1);
    const int err = errno;
    const int rc = ::close(fd);
    if (n != static_cast<ssize_t>(sizeof kChange - 1))
        throw Error(Errc::Failed, "cannot send a change event for " + name + ": " +
                                      (n < 0 ? errno_text(err) : std::string("short write")));
    if (rc != 0)
        throw Error(Errc::Failed,
                    "cannot send a change event for " + name + ": close: " + errno_text(errno));
}

}  // namespace ezio
