// One job on the bus: /org/ezio/Ezio1/job/N with org.ezio.Ezio1.Job.
//
// Properties are served from the last JobStatus the engine reported;
// update() emits PropertiesChanged for the properties that changed and
// nothing else (the engine already limits updates to about two a second).
// Registration emits InterfacesAdded and destruction InterfacesRemoved,
// through the ObjectManager on /org/ezio/Ezio1.
//
// Threading: main thread only; the method handlers run inside
// sdbus::IConnection::processPendingRequest() on that thread.
// Lifetime: owned by Daemon. Never destroyed from inside one of its own
// method handlers (Daemon defers removal to the main loop).
#pragma once

#include <ezio-dbus/job_adaptor.hpp>

#include <sdbus-c++/sdbus-c++.h>

#include "engine.hpp"
#include "job_host.hpp"

namespace ezio::daemon {

class JobObject final
    : public sdbus::AdaptorInterfaces<org::ezio::Ezio1::Job_adaptor, sdbus::ManagedObject_adaptor> {
  public:
    JobObject(sdbus::IConnection& bus, JobHost& host, const JobStatus& status, VariantMap options);
    ~JobObject();

    JobId id() const { return status_.id; }
    const JobStatus& status() const { return status_; }
    sdbus::ObjectPath path() const { return sdbus::ObjectPath(getObjectPath()); }

    // Emits PropertiesChanged for what differs from the last status.
    void update(const JobStatus& status);
    // Emits Completed, the first time only.
    void completed(bool success, const std::string& message);

  private:
    void Pause() override;
    void Resume() override;
    void Cancel(const std::map<std::string, sdbus::Variant>& options) override;

    std::string Operation() override;
    std::string State() override;
    double Progress() override;
    uint64_t BytesDone() override;
    uint64_t BytesTotal() override;
    uint64_t DownloadRate() override;
    uint64_t UploadRate() override;
    uint32_t Peers() override;
    uint64_t TotalDownloaded() override;
    uint64_t TotalUploaded() override;
    std::string Target() override;
    std::string Name() override;
    std::string InfoHash() override;
    uint64_t StartTime() override;
    uint64_t ExpectedEndTime() override;
    std::string LastError() override;
    std::string ErrorName() override;
    std::map<std::string, sdbus::Variant> Options() override;

    JobHost& host_;
    JobStatus status_;
    VariantMap options_;
    bool completed_sent_ = false;
};

}  // namespace ezio::daemon
