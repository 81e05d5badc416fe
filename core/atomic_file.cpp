#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "error.hpp"

namespace ezio {
namespace {

[[noreturn]] void io_fail(const std::string& what, const std::string& path, int err) {
    throw Error(Errc::IoError, what + " " + path + ": " + std::strerror(err));
}

void fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        io_fail("cannot open directory", dir, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
        io_fail("cannot sync directory", dir, err);
}

}  // namespace

void write_file_atomic(const std::string& path, std::span<const char> data) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    std::string tmp = path + ".tmp-XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0)
        io_fail("cannot create a temporary file for", path, errno);
    auto cleanup = [&](int err, const char* what) {
        ::close(fd);
        ::unlink(tmp.c_str());
        io_fail(what, path, err);
    };
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cleanup(errno, "cannot write");
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0)
        cleanup(errno, "cannot sync");
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        io_fail("cannot close", path, err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        io_fail("cannot rename into", path, err);
    }
    fsync_dir(dir.empty() ? "." : dir);
}

std::vector<char> read_file(const std::string& path, std::size_t max_bytes) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT)
            throw Error(Errc::NotFound, path + ": " + std::strerror(err));
        io_fail("cannot open", path, err);
    }
    std::vector<char> out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int err = errno;
            ::close(fd);
            io_fail("cannot read", path, err);
        }
        if (n == 0)
            break;
        if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
            ::close(fd);
            throw Error(Errc::IoError,
                        path + " is larger than " + std::to_string(max_bytes) + " bytes");
        }
        out.insert(out.end(), buf, buf + n);
    }
    ::close(fd);
    return out;
}

void make_directories(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec)
        throw Error(Errc::IoError, "cannot create directory " + path + ": " + ec.message());
    if (::chmod(path.c_str(), 0700) != 0)
        io_fail("cannot set permissions of", path, errno);
}

}  // namespace ezio
