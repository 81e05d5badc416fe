#include "target_path.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "error.hpp"

namespace ezio {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void invalid(const std::string& message) {
    throw Error(Errc::InvalidTarget, message);
}

struct Resolved {
    std::string path;
    struct stat st {};
};

// realpath() + stat(); the errno of the first failure otherwise.
std::optional<Resolved> resolve(const std::string& path, int& err) {
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
    if (!real) {
        err = errno;
        return std::nullopt;
    }
    Resolved r;
    r.path = real.get();
    if (::stat(r.path.c_str(), &r.st) != 0) {
        err = errno;
        return std::nullopt;
    }
    return r;
}

bool explicitly_relative(std::string_view arg) {
    return arg == "." || arg == ".." || arg.starts_with("./") || arg.starts_with("../");
}

std::string absolute_of(std::string_view arg) {
    std::error_code ec;
    fs::path p = fs::absolute(fs::path(arg), ec);
    if (ec)
        invalid(std::string(arg) + ": " + ec.message());
    return p.lexically_normal().string();
}

std::string describe_type(const struct stat& st) {
    if (S_ISDIR(st.st_mode))
        return "a directory";
    if (S_ISCHR(st.st_mode))
        return "a character device";
    if (S_ISFIFO(st.st_mode))
        return "a FIFO";
    if (S_ISSOCK(st.st_mode))
        return "a socket";
    if (S_ISREG(st.st_mode))
        return "a regular file";
    if (S_ISBLK(st.st_mode))
        return "a block device";
    return "not a block device or regular file";
}

std::string shown(std::string_view arg, const std::string& path) {
    return arg == path ? path : "'" + std::string(arg) + "' (" + path + ")";
}

std::string resolve_device(std::string_view arg, const std::string& candidate) {
    int err = 0;
    auto r = resolve(candidate, err);
    if (!r) {
        if (err == ENOENT || err == ENOTDIR)
            invalid("no such device: " + shown(arg, candidate));
        invalid(shown(arg, candidate) + ": " + std::strerror(err));
    }
    if (S_ISBLK(r->st.st_mode))
        return r->path;
    if (S_ISREG(r->st.st_mode))
        invalid(shown(arg, r->path) +
                " is a regular file, not a block device (use --file to write into a file)");
    invalid(shown(arg, r->path) + " is " + describe_type(r->st) + ", not a block device");
}

std::string resolve_file(std::string_view arg) {
    const std::string abs = absolute_of(arg);
    const fs::path p(abs);
    if (arg.ends_with('/') || !p.has_filename() || p.filename() == "." || p.filename() == "..")
        invalid(std::string(arg) + " names a directory, not a file");

    int err = 0;
    if (auto r = resolve(abs, err)) {
        if (S_ISREG(r->st.st_mode))
            return r->path;
        if (S_ISBLK(r->st.st_mode))
            invalid(shown(arg, r->path) + " is a block device (leave out --file for devices)");
        invalid(shown(arg, r->path) + " is " + describe_type(r->st) + ", not a regular file");
    }
    if (err != ENOENT)
        invalid(shown(arg, abs) + ": " + std::strerror(err));

    // Not there yet: eziod creates it. Refuse a dangling symlink, whose
    // creation would land somewhere the user did not name.
    struct stat lst {};
    if (::lstat(abs.c_str(), &lst) == 0)
        invalid(shown(arg, abs) + " is a dangling symbolic link");
    auto dir = resolve(p.parent_path().string(), err);
    if (!dir)
        invalid("cannot create " + shown(arg, abs) + ": directory " + p.parent_path().string() +
                ": " + std::strerror(err));
    if (!S_ISDIR(dir->st.st_mode))
        invalid("cannot create " + shown(arg, abs) + ": " + p.parent_path().string() +
                " is not a directory");
    return (fs::path(dir->path) / p.filename()).string();
}

std::string resolve_device_or_file(std::string_view arg, const std::string& dev_dir) {
    std::string candidate;
    if (arg.starts_with('/')) {
        candidate = std::string(arg);
    } else if (explicitly_relative(arg)) {
        candidate = absolute_of(arg);
    } else {
        // Device names first: "sda1" is the partition even if a file of that
        // name happens to sit in the current directory.
        const std::string in_dev = dev_dir + "/" + std::string(arg);
        struct stat st {};
        candidate = ::lstat(in_dev.c_str(), &st) == 0 ? in_dev : absolute_of(arg);
    }
    int err = 0;
    auto r = resolve(candidate, err);
    if (!r) {
        if (err == ENOENT || err == ENOTDIR)
            invalid("no such device or file: " + shown(arg, candidate));
        invalid(shown(arg, candidate) + ": " + std::strerror(err));
    }
    if (S_ISBLK(r->st.st_mode) || S_ISREG(r->st.st_mode))
        return r->path;
    invalid(shown(arg, r->path) + " is " + describe_type(r->st) +
            ", not a block device or regular file");
}

}  // namespace

std::string resolve_target_path(std::string_view arg, TargetKind kind, const std::string& dev_dir) {
    if (arg.empty())
        invalid("empty target");
    if (arg.find('\0') != std::string_view::npos)
        invalid("target contains a NUL byte");
    switch (kind) {
        case TargetKind::File:
            return resolve_file(arg);
        case TargetKind::DeviceOrFile:
            return resolve_device_or_file(arg, dev_dir);
        case TargetKind::Device:
            break;
    }
    std::string candidate;
    if (arg.starts_with('/'))
        candidate = std::string(arg);
    else if (explicitly_relative(arg))
        candidate = absolute_of(arg);
    else
        candidate = dev_dir + "/" + std::string(arg);
    return resolve_device(arg, candidate);
}

}  // namespace ezio
