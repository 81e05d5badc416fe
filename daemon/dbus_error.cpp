#include "dbus_error.hpp"

#include <sdbus-c++/Error.h>

#include <new>
#include <string>

#include "error.hpp"

namespace ezio::daemon {

void rethrow_as_dbus_error() {
    try {
        throw;
    } catch (const sdbus::Error&) {
        throw;
    } catch (const Error& e) {
        throw sdbus::Error(std::string(dbus_error_name(e.code())), e.what());
    } catch (const std::bad_alloc&) {
        throw sdbus::Error(std::string(dbus_error_name(Errc::Failed)), "out of memory");
    } catch (const std::exception& e) {
        throw sdbus::Error(std::string(dbus_error_name(Errc::Failed)), e.what());
    } catch (...) {
        throw sdbus::Error(std::string(dbus_error_name(Errc::Failed)), "unknown error");
    }
}

}  // namespace ezio::daemon
