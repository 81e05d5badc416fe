// ezio error model: one closed set of error codes shared by the engine, eziod
// and ezioctl. The D-Bus error names are derived from this table and nowhere
// else (see error.cpp), so the daemon and the client cannot drift apart.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace ezio {

enum class Errc {
    Failed,          // generic failure; message says why
    InvalidArgs,     // bad option key, wrong type, bad value
    InvalidTorrent,  // torrent bytes do not parse or violate the image layout
    InvalidTarget,   // target does not exist, is too small, read-only, ...
    TargetBusy,      // target is mounted, in use, or held by another job
    NotFound,        // no such job / disk
    Cancelled,       // job was cancelled
    IoError,         // read/write/flush on the target failed
    NotSupported,    // operation not possible in this state
    AccessDenied,    // caller is not allowed
};

// "org.ezio.Ezio1.Error.InvalidTorrent" etc.
std::string_view dbus_error_name(Errc code);
// Inverse of dbus_error_name(); Errc::Failed for names we do not know.
Errc errc_from_dbus_name(std::string_view name);
// Short name without prefix, e.g. "InvalidTorrent".
std::string_view errc_name(Errc code);
// Process exit status ezioctl uses for this error (documented in ezioctl(1)).
int exit_code(Errc code);

class Error : public std::runtime_error {
  public:
    Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
    Errc code() const noexcept { return code_; }

  private:
    Errc code_;
};

}  // namespace ezio
