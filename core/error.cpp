#include "error.hpp"

#include <array>
#include <utility>

namespace ezio {
namespace {

struct Entry {
    Errc code;
    std::string_view dbus_name;
    int exit_code;
};

// Exit codes: 0 success, 1 failure, 2 usage / invalid arguments, 3 not found,
// 4 target refused (invalid or busy), 5 I/O error, 6 cancelled, 7 denied.
constexpr std::array kErrors{
    Entry{Errc::Failed, "org.ezio.Ezio1.Error.Failed", 1},
    Entry{Errc::InvalidArgs, "org.ezio.Ezio1.Error.InvalidArgs", 2},
    Entry{Errc::InvalidTorrent, "org.ezio.Ezio1.Error.InvalidTorrent", 2},
    Entry{Errc::InvalidTarget, "org.ezio.Ezio1.Error.InvalidTarget", 4},
    Entry{Errc::TargetBusy, "org.ezio.Ezio1.Error.TargetBusy", 4},
    Entry{Errc::NotFound, "org.ezio.Ezio1.Error.NotFound", 3},
    Entry{Errc::Cancelled, "org.ezio.Ezio1.Error.Cancelled", 6},
    Entry{Errc::IoError, "org.ezio.Ezio1.Error.IoError", 5},
    Entry{Errc::NotSupported, "org.ezio.Ezio1.Error.NotSupported", 1},
    Entry{Errc::AccessDenied, "org.ezio.Ezio1.Error.AccessDenied", 7},
};

const Entry& entry(Errc code) {
    for (const auto& e : kErrors)
        if (e.code == code)
            return e;
    return kErrors[0];
}

}  // namespace

std::string_view dbus_error_name(Errc code) {
    return entry(code).dbus_name;
}

std::string_view errc_name(Errc code) {
    auto name = entry(code).dbus_name;
    return name.substr(name.rfind('.') + 1);
}

Errc errc_from_dbus_name(std::string_view name) {
    for (const auto& e : kErrors)
        if (e.dbus_name == name)
            return e.code;
    if (name == "org.freedesktop.DBus.Error.InvalidArgs")
        return Errc::InvalidArgs;
    if (name == "org.freedesktop.DBus.Error.AccessDenied")
        return Errc::AccessDenied;
    if (name == "org.freedesktop.DBus.Error.UnknownObject" ||
        name == "org.freedesktop.DBus.Error.UnknownMethod")
        return Errc::NotFound;
    return Errc::Failed;
}

int exit_code(Errc code) {
    return entry(code).exit_code;
}

}  // namespace ezio
