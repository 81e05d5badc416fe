#include "job_object.hpp"

#include <utility>

#include "cli_format.hpp"
#include "dbus_error.hpp"
#include "log.hpp"
#include "options.hpp"

namespace ezio::daemon {
namespace {

std::string error_name_of(const JobStatus& s) {
    if (s.state != JobState::Failed && s.state != JobState::Cancelled)
        return {};
    return std::string(dbus_error_name(s.error_code));
}

}  // namespace

JobObject::JobObject(sdbus::IConnection& bus, JobHost& host, const JobStatus& status,
                     VariantMap options)
    : AdaptorInterfaces(bus, job_object_path(status.id)),
      host_(host),
      status_(status),
      options_(std::move(options)) {
    registerAdaptor();
    emitInterfacesAddedSignal();
}

JobObject::~JobObject() {
    try {
        emitInterfacesRemovedSignal();
    } catch (const sdbus::Error& e) {
        // The bus may be gone at shutdown; the object goes away regardless.
        log::debug("InterfacesRemoved for " + getObjectPath() + ": " + e.getMessage());
    }
    unregisterAdaptor();
}

void JobObject::update(const JobStatus& s) {
    const JobStatus old = std::exchange(status_, s);
    std::vector<std::string> changed;
    auto check = [&](bool differs, const char* name) {
        if (differs)
            changed.emplace_back(name);
    };
    check(old.state != s.state, "State");
    check(old.progress != s.progress, "Progress");
    check(old.bytes_done != s.bytes_done, "BytesDone");
    check(old.bytes_total != s.bytes_total, "BytesTotal");
    check(old.download_rate != s.download_rate, "DownloadRate");
    check(old.upload_rate != s.upload_rate, "UploadRate");
    check(old.peers != s.peers, "Peers");
    check(old.total_download != s.total_download, "TotalDownloaded");
    check(old.total_upload != s.total_upload, "TotalUploaded");
    check(old.expected_end_time != s.expected_end_time, "ExpectedEndTime");
    check(old.last_error != s.last_error, "LastError");
    check(error_name_of(old) != error_name_of(s), "ErrorName");
    if (changed.empty())
        return;
    getObject().emitPropertiesChangedSignal(org::ezio::Ezio1::Job_adaptor::INTERFACE_NAME, changed);
}

void JobObject::completed(bool success, const std::string& message) {
    // Once per job: a deploy with seed_after reports its deployment, and the
    // end of its seeding is only a State change.
    if (completed_sent_)
        return;
    completed_sent_ = true;
    emitCompleted(success, message);
}

void JobObject::Pause() {
    dbus_call([&] { host_.engine().pause(status_.id); });
}

void JobObject::Resume() {
    dbus_call([&] { host_.engine().resume(status_.id); });
}

void JobObject::Cancel(const std::map<std::string, sdbus::Variant>& options) {
    dbus_call([&] {
        parse_cancel_options(options);
        auto now = host_.engine().status(status_.id);
        if (!now || is_final(now->state)) {
            // Finished (or already gone from the engine): Cancel removes it.
            host_.remove_job_later(status_.id);
            return;
        }
        host_.engine().cancel(status_.id);
    });
}

std::string JobObject::Operation() {
    return std::string(to_string(status_.operation));
}
std::string JobObject::State() {
    return std::string(to_string(status_.state));
}
double JobObject::Progress() {
    return status_.progress;
}
uint64_t JobObject::BytesDone() {
    return status_.bytes_done;
}
uint64_t JobObject::BytesTotal() {
    return status_.bytes_total;
}
uint64_t JobObject::DownloadRate() {
    return status_.download_rate;
}
uint64_t JobObject::UploadRate() {
    return status_.upload_rate;
}
uint32_t JobObject::Peers() {
    return status_.peers;
}
uint64_t JobObject::TotalDownloaded() {
    return status_.total_download;
}
uint64_t JobObject::TotalUploaded() {
    return status_.total_upload;
}
std::string JobObject::Target() {
    return status_.target;
}
std::string JobObject::Name() {
    return status_.name;
}
std::string JobObject::InfoHash() {
    return status_.info_hash;
}
uint64_t JobObject::StartTime() {
    return status_.start_time;
}
uint64_t JobObject::ExpectedEndTime() {
    return status_.expected_end_time;
}
std::string JobObject::LastError() {
    return status_.last_error;
}
std::string JobObject::ErrorName() {
    return error_name_of(status_);
}
std::map<std::string, sdbus::Variant> JobObject::Options() {
    return options_;
}

}  // namespace ezio::daemon
