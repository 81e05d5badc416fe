// BusClient: ezioctl's only door to eziod. It wraps the proxies that
// sdbus-c++-xml2cpp generates from dbus/*.xml; sdbus-c++ types never leave
// bus_client.cpp, so the verbs work on plain values (JSON objects keyed by
// the D-Bus property names) and a move to sdbus-c++ v2 touches one file.
//
// Threading: single-threaded. There is no event-loop thread; signals are
// dispatched only inside run_until(), on the caller's thread.
//
// Errors: every method throws ezio::Error whose code comes from the D-Bus
// error name through errc_from_dbus_name(), and whose message is the
// daemon's message (or says that eziod is not reachable).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ezio::cli {

// Options of Deploy()/Seed(). Only fields that are set are sent, so the
// daemon's defaults apply to everything the user did not ask for.
struct JobRequestOptions {
    std::vector<std::string> peers;                  // "peers" (as), sent when not empty
    std::optional<bool> verify;                      // "verify" (b)
    std::optional<std::string> seed_after;           // "seed_after" (s)
    std::optional<std::uint32_t> max_upload_rate;    // "max_upload_rate" (u)
    std::optional<std::uint32_t> max_download_rate;  // "max_download_rate" (u)
    std::optional<std::uint32_t> max_connections;    // "max_connections" (u)
    std::optional<bool> sequential;                  // "sequential" (b)
    std::optional<bool> force;                       // "force" (b)
    std::optional<bool> file;                        // "file" (b)
};

// A job as the bus shows it: its object path and its org.ezio.Ezio1.Job
// properties (a JSON object keyed by property name; numbers keep their
// D-Bus signedness, a{sv} becomes an object).
struct JobSnapshot {
    std::string path;
    nlohmann::json properties;
};

// A disk as the bus shows it: its object path
// (/org/ezio/Ezio1/disk/NAME) and its org.ezio.Ezio1.Disk properties.
struct DiskSnapshot {
    std::string path;
    nlohmann::json properties;
};

// What run_until() reports. Any callback may be empty.
struct BusEvents {
    // A job appeared (InterfacesAdded), with all its properties.
    std::function<void(const JobSnapshot& job)> job_added;
    // A job disappeared (InterfacesRemoved).
    std::function<void(const std::string& path)> job_removed;
    // PropertiesChanged on a job: only the changed properties.
    std::function<void(const std::string& path, const nlohmann::json& changed)> job_changed;
    // The job's Completed(success, message) signal.
    std::function<void(const std::string& path, bool success, const std::string& message)>
        job_completed;
    // eziod lost its bus name (exited or crashed).
    std::function<void()> daemon_gone;
};

class BusClient {
  public:
    enum class Bus { System, Session };

    // Connects to the bus (DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS
    // are honoured). Does not contact eziod yet.
    explicit BusClient(Bus bus);
    ~BusClient();
    BusClient(const BusClient&) = delete;
    BusClient& operator=(const BusClient&) = delete;

    // Manager methods; return the new job's object path.
    std::string deploy(const std::vector<char>& torrent, const std::string& target,
                       const JobRequestOptions& options);
    std::string seed(const std::vector<char>& torrent, const std::string& source,
                     const JobRequestOptions& options);

    // Manager properties (Version, ListenPort, Jobs, ...).
    nlohmann::json manager_properties();
    // Every job with its properties in one call (ObjectManager
    // GetManagedObjects, which the bus policy allows to everybody), ordered
    // by job number.
    std::vector<JobSnapshot> jobs();
    // One job's properties; Errc::NotFound when there is no such job.
    JobSnapshot job(const std::string& path);
    // Every disk and partition eziod sees, with its properties, in one call
    // (GetManagedObjects), in object path order.
    std::vector<DiskSnapshot> disks();

    void pause(const std::string& path);
    void resume(const std::string& path);
    void cancel(const std::string& path);

    // Starts delivering events for one job (`path`) or, with nullopt, for
    // every job, including ones created later. Subscribe before the call
    // that creates or changes the job, so nothing is missed. Replaces any
    // earlier subscription.
    void subscribe(std::optional<std::string> path, BusEvents events);

    enum class RunResult { Done, Interrupted };
    // Dispatches bus events until `done()` returns true or `interrupt_fd`
    // becomes readable (-1: none). `done()` is checked at start, whenever
    // the queue of received messages is drained, and at least every
    // `recheck` (for conditions that depend on time).
    RunResult run_until(const std::function<bool()>& done, int interrupt_fd,
                        std::chrono::milliseconds recheck = std::chrono::milliseconds(-1));

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ezio::cli
