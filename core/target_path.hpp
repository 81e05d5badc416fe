// Resolving the TARGET / SOURCE argument of ezioctl into the path eziod opens.
//
// The daemon runs with its own working directory and does not follow the
// user's shell, so the client turns what the user typed into one canonical
// absolute path before sending it:
//   "sda1"                       -> /dev/sda1
//   "mapper/vg-root"             -> /dev/mapper/vg-root (resolved)
//   "/dev/sda1"                  -> /dev/sda1
//   "/dev/disk/by-label/root"    -> /dev/sdb2 (symlinks resolved, realpath)
//   with kind File: "img.raw"    -> /current/dir/img.raw
//
// Errors are ezio::Error(Errc::InvalidTarget, message naming the argument).
// Only the file system is consulted (stat/realpath); nothing is opened.
#pragma once

#include <string>
#include <string_view>

namespace ezio {

enum class TargetKind {
    // A block device. A name without a leading '/', "./" or "../" is taken
    // relative to the device directory ("sda1" -> /dev/sda1).
    Device,
    // A regular file (deploying into an image file). The path is made
    // absolute against the current directory; it may not exist yet (eziod
    // creates it), but its directory must, and an existing path must be a
    // regular file.
    File,
    // A seed source: a block device or an existing regular file. A bare name
    // is looked up in the device directory first, then in the current
    // directory; write "./NAME" to mean a file.
    DeviceOrFile,
};

// `dev_dir` is the device directory; tests pass a temporary directory.
std::string resolve_target_path(std::string_view arg, TargetKind kind,
                                const std::string& dev_dir = "/dev");

}  // namespace ezio
