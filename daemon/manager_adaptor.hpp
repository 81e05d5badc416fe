// org.ezio.Ezio1.Manager and org.freedesktop.DBus.ObjectManager at
// /org/ezio/Ezio1.
//
// Deploy and Seed validate synchronously through the Engine (which opens and
// checks the target before returning a JobId) and return the job's path at
// once; the job object exists on the bus before the reply is sent. Engine
// errors become sdbus::Error(dbus_error_name(code), message).
//
// Threading: main thread only, inside processPendingRequest().
#pragma once

#include <ezio-dbus/manager_adaptor.hpp>

#include <sdbus-c++/sdbus-c++.h>

#include "engine.hpp"
#include "job_host.hpp"

namespace ezio::daemon {

inline constexpr const char* kBusName = "org.ezio.Ezio1";
inline constexpr const char* kManagerPath = "/org/ezio/Ezio1";

class ManagerAdaptor final : public sdbus::AdaptorInterfaces<org::ezio::Ezio1::Manager_adaptor,
                                                             sdbus::ObjectManager_adaptor> {
  public:
    ManagerAdaptor(sdbus::IConnection& bus, JobHost& host);
    ~ManagerAdaptor();

    // Emits PropertiesChanged for Jobs.
    void jobs_changed();

  private:
    sdbus::ObjectPath Deploy(const std::vector<uint8_t>& torrent, const std::string& target,
                             const std::map<std::string, sdbus::Variant>& options) override;
    sdbus::ObjectPath Seed(const std::vector<uint8_t>& torrent, const std::string& source,
                           const std::map<std::string, sdbus::Variant>& options) override;
    std::vector<sdbus::ObjectPath> ListJobs() override;

    std::string Version() override;
    uint32_t ListenPort() override;
    std::vector<sdbus::ObjectPath> Jobs() override;

    // Logs "WHAT requested by :1.42 (uid 1000)". The uid is asked of the
    // bus asynchronously: a synchronous query from inside a method call
    // blocks the main loop for a round trip, and meanwhile sd-bus reads
    // every call queued behind this one into eziod's memory (4 MiB each for
    // the Deploys of test_fault_dbus_clients, whose resident size then grew
    // with the backlog).
    void log_request(std::string what);

    JobHost& host_;
    std::unique_ptr<sdbus::IProxy> bus_driver_;  // org.freedesktop.DBus
};

}  // namespace ezio::daemon
