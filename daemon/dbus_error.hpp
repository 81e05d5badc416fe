// Turns whatever a D-Bus method handler caught into the sdbus::Error the
// caller receives. The names come from ezio::dbus_error_name() only.
#pragma once

#include <exception>

namespace ezio::daemon {

// Call from inside a catch block: rethrows the current exception as
// sdbus::Error. ezio::Error keeps its code and message; sdbus::Error passes
// through; anything else becomes org.ezio.Ezio1.Error.Failed.
[[noreturn]] void rethrow_as_dbus_error();

// Runs `fn`, converting its exceptions with rethrow_as_dbus_error().
template <typename Fn>
decltype(auto) dbus_call(Fn&& fn) {
    try {
        return fn();
    } catch (...) {
        rethrow_as_dbus_error();
    }
}

}  // namespace ezio::daemon
