#include "daemon.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include "cli_format.hpp"
#include "log.hpp"

namespace ezio::daemon {

Daemon::Daemon(sdbus::IConnection& bus, EngineConfig config)
    : bus_(bus), manager_(std::make_unique<ManagerAdaptor>(bus_, *this)) {
    engine_ = std::make_unique<Engine>(std::move(config), this);
}

Daemon::~Daemon() {
    // Objects first: their handlers refer to the engine.
    jobs_.clear();
    manager_.reset();
    engine_.reset();
}

JobObject& Daemon::object_for(const JobStatus& status) {
    auto it = jobs_.find(status.id);
    if (it != jobs_.end())
        return *it->second;
    VariantMap options;
    if (pending_options_)
        options = *std::exchange(pending_options_, std::nullopt);
    auto object = std::make_unique<JobObject>(bus_, *this, status, std::move(options));
    auto& ref = *object;
    jobs_.emplace(status.id, std::move(object));
    manager_->jobs_changed();
    log::job(LogLevel::Info, status,
             std::string(to_string(status.operation)) + " job " + ref.path() + " for " +
                 status.name + " (" + status.info_hash + ")");
    return ref;
}

sdbus::ObjectPath Daemon::publish_job(VariantMap options, const std::function<JobId()>& start) {
    pending_options_ = std::move(options);
    JobId id = 0;
    try {
        id = start();
    } catch (...) {
        pending_options_.reset();
        throw;
    }
    auto status = engine_->status(id);
    if (!status) {
        pending_options_.reset();
        throw Error(Errc::Failed, "job " + std::to_string(id) + " vanished at once");
    }
    auto& object = object_for(*status);
    pending_options_.reset();
    return object.path();
}

std::vector<sdbus::ObjectPath> Daemon::job_paths() const {
    std::vector<sdbus::ObjectPath> paths;
    paths.reserve(jobs_.size());
    for (const auto& [id, object] : jobs_)
        paths.push_back(object->path());
    return paths;
}

void Daemon::job_added(const JobStatus& status) {
    try {
        object_for(status).update(status);
    } catch (const std::exception& e) {
        observer_failed(status, e);
    }
}

void Daemon::job_changed(const JobStatus& status) {
    try {
        auto& object = object_for(status);
        if (object.status().state != status.state)
            log::job(LogLevel::Info, status, "state " + std::string(to_string(status.state)));
        object.update(status);
    } catch (const std::exception& e) {
        observer_failed(status, e);
    }
}

void Daemon::job_finished(const JobStatus& status, bool success, const std::string& message) {
    try {
        auto& object = object_for(status);
        object.update(status);
        object.completed(success, message);
        const char* what = success                               ? "completed: "
                           : status.state == JobState::Cancelled ? "cancelled: "
                                                                 : "failed: ";
        log::job(success ? LogLevel::Notice : LogLevel::Error, status, what + message);
        if (!is_final(status.state))
            return;  // deployed, now seeding for a while
        if (std::find(finished_.begin(), finished_.end(), status.id) == finished_.end())
            finished_.push_back(status.id);
        while (finished_.size() > kMaxFinishedJobs) {
            remove_job_later(finished_.front());
            finished_.pop_front();
        }
    } catch (const std::exception& e) {
        observer_failed(status, e);
    }
}

void Daemon::job_log(const JobStatus& status, const std::string& message) {
    try {
        log::job(LogLevel::Info, status, message);
    } catch (const std::exception& e) {
        observer_failed(status, e);
    }
}

void Daemon::observer_failed(const JobStatus& status, const std::exception& e) {
    // Never let a bus failure unwind into the engine: log it. A broken
    // connection also fails processPendingRequest(), which ends eziod.
    log::job(LogLevel::Error, status, std::string("cannot publish job update: ") + e.what());
}

void Daemon::remove_job_later(JobId id) {
    if (std::find(to_remove_.begin(), to_remove_.end(), id) == to_remove_.end())
        to_remove_.push_back(id);
}

void Daemon::remove_now(JobId id) {
    try {
        engine_->remove(id);
    } catch (const Error& e) {
        // Already gone from the engine: the bus object still has to go.
        log::debug("remove job " + std::to_string(id) + ": " + e.what());
    }
    finished_.erase(std::remove(finished_.begin(), finished_.end(), id), finished_.end());
    auto it = jobs_.find(id);
    if (it == jobs_.end())
        return;
    log::job(LogLevel::Info, it->second->status(), "removed");
    jobs_.erase(it);
    manager_->jobs_changed();
}

void Daemon::flush() {
    auto ids = std::exchange(to_remove_, {});
    for (auto id : ids)
        remove_now(id);
}

namespace {

std::string peers_text(std::uint32_t peers) {
    return std::to_string(peers) + (peers == 1 ? " peer" : " peers");
}

}  // namespace

std::string Daemon::status_line() const {
    std::string line;
    std::size_t finished = 0;
    for (const auto& [id, object] : jobs_) {
        const auto& s = object->status();
        if (is_final(s.state)) {
            ++finished;
            continue;
        }
        if (!line.empty())
            line += "; ";
        if (line.size() > 200) {
            line += "...";
            break;
        }
        std::string name = s.name.empty() ? s.target : s.name;
        switch (s.state) {
            case JobState::Downloading:
            case JobState::Checking:
            case JobState::Finishing:
                line += std::string(s.state == JobState::Downloading ? "Deploying "
                                    : s.state == JobState::Checking  ? "Checking "
                                                                     : "Finishing ") +
                        name + ": " + format_percent(s.progress) + ", " +
                        format_rate(s.download_rate) + ", " + peers_text(s.peers);
                break;
            case JobState::Seeding:
                line += "Seeding " + name + ": " + format_rate(s.upload_rate) + " up, " +
                        peers_text(s.peers);
                break;
            default: {
                std::string state(to_string(s.state));
                if (!state.empty())
                    state[0] = static_cast<char>(std::toupper(state[0]));
                line += state + " " + name;
            } break;
        }
    }
    if (line.empty())
        line = finished ? "Idle, " + std::to_string(finished) + " finished job(s)" : "Idle";
    return line;
}

}  // namespace ezio::daemon
