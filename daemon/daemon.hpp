// eziod's core object: owns the Engine and everything eziod exports on the
// bus, and turns engine events into bus objects, signals and log lines.
//
// Ownership: Daemon owns the Engine, the Manager object at /org/ezio/Ezio1
// and one JobObject per job. Jobs stay on the bus after they finish until a
// caller cancels them again or more than kMaxFinishedJobs are kept.
//
// Threading: everything runs on the main thread. Observer callbacks run
// inside engine().process(), D-Bus handlers inside processPendingRequest();
// the main loop calls flush() after both, which is where objects are
// destroyed (never inside one of their own handlers).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine.hpp"
#include "job_object.hpp"
#include "manager_adaptor.hpp"

namespace ezio::daemon {

class Daemon final : public EngineObserver, public JobHost {
  public:
    static constexpr std::size_t kMaxFinishedJobs = 32;

    Daemon(sdbus::IConnection& bus, EngineConfig config);
    ~Daemon() override;
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    Engine& engine() override { return *engine_; }

    // Carries out deferred removals. Call after every dispatch round.
    void flush();

    // One line for systemd's STATUS=, e.g. "Deploying sda1: 42.0%,
    // 110.3 MiB/s, 7 peers".
    std::string status_line() const;

    // EngineObserver
    void job_added(const JobStatus& status) override;
    void job_changed(const JobStatus& status) override;
    void job_finished(const JobStatus& status, bool success, const std::string& message) override;
    void job_log(const JobStatus& status, const std::string& message) override;

    // JobHost
    void remove_job_later(JobId id) override;
    sdbus::ObjectPath publish_job(VariantMap options, const std::function<JobId()>& start) override;
    std::vector<sdbus::ObjectPath> job_paths() const override;

  private:
    // The job's object, created on first sight (with pending_options_ when a
    // publish_job() is under way).
    JobObject& object_for(const JobStatus& status);
    void observer_failed(const JobStatus& status, const std::exception& e);
    void remove_now(JobId id);

    sdbus::IConnection& bus_;
    // The Manager (with the ObjectManager) exists before the Engine, so jobs
    // the Engine reports from its constructor can go on the bus.
    std::unique_ptr<ManagerAdaptor> manager_;
    std::unique_ptr<Engine> engine_;
    std::map<JobId, std::unique_ptr<JobObject>> jobs_;  // by id = creation order
    std::deque<JobId> finished_;                        // oldest first
    std::vector<JobId> to_remove_;
    std::optional<VariantMap> pending_options_;  // set during publish_job()
};

}  // namespace ezio::daemon
