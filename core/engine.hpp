// ezio::Engine: deployment jobs over one libtorrent session with the raw-disk
// storage. Knows nothing about D-Bus; eziod adapts it to the bus and the tests
// drive it directly.
//
// Threading: every public member is called on one owner thread (eziod's main
// loop). libtorrent runs its own network thread and the storage its own I/O
// threads; they only wake the owner through event_fd(). The owner calls
// process() whenever event_fd() is readable or next_timeout() has elapsed, and
// the observer callbacks run inside process(), on the owner thread.
//
// Errors: methods that can fail throw ezio::Error with an Errc and a message
// meant for a person.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"

namespace ezio {

using JobId = std::uint32_t;

enum class Operation { Deploy, Seed };
enum class JobState {
    Queued,       // accepted, not started yet
    Checking,     // checking resume data / existing pieces
    Downloading,  // receiving and writing pieces
    Finishing,    // all pieces written; flushing (and verifying, if asked)
    Seeding,      // complete and serving peers (seed job, or deploy with seed_after)
    Completed,    // done; for a deploy the target is flushed and durable
    Failed,       // stopped on an error; see JobStatus::last_error
    Cancelled,    // cancelled by a caller
    Paused,       // paused by a caller
};
std::string_view to_string(Operation op);
std::string_view to_string(JobState state);
// True for Completed, Failed, Cancelled: the job will not change again.
bool is_final(JobState state);

struct JobOptions {
    std::vector<std::string> peers;  // extra peers, "host:port" / "[v6]:port"
    bool verify = false;             // re-read and hash every piece before Completed
    std::int64_t seed_after = 0;     // seconds to keep seeding after a deploy; -1 forever
    int max_upload_rate = 0;         // bytes/s, 0 = unlimited
    int max_download_rate = 0;       // bytes/s, 0 = unlimited
    int max_connections = 0;         // 0 = engine default
    bool sequential = false;         // request pieces in order
    bool force = false;              // skip safety refusals that force may override
    bool seed_verified = true;       // seed: trust the source, do not rehash
};

struct JobStatus {
    JobId id = 0;
    Operation operation = Operation::Deploy;
    JobState state = JobState::Queued;
    double progress = 0.0;            // 0..1
    std::uint64_t bytes_done = 0;     // verified bytes on the target
    std::uint64_t bytes_total = 0;    // image data bytes (sum of extents)
    std::uint64_t download_rate = 0;  // bytes/s
    std::uint64_t upload_rate = 0;    // bytes/s
    std::uint32_t peers = 0;
    // Payload bytes received from / sent to peers since this process started
    // (or restored) the job; a piece fetched twice counts twice.
    std::uint64_t total_download = 0;
    std::uint64_t total_upload = 0;
    std::string target;                   // device or file path as opened
    std::string name;                     // torrent name (partition name)
    std::string info_hash;                // hex: v1 (40 digits) if present, else v2 (64)
    std::uint64_t start_time = 0;         // µs since the epoch
    std::uint64_t expected_end_time = 0;  // µs since the epoch, 0 when unknown
    std::string last_error;               // empty unless Failed
    Errc error_code = Errc::Failed;       // meaningful when Failed/Cancelled
};

// Callbacks from Engine::process(), on the owner thread.
class EngineObserver {
  public:
    virtual ~EngineObserver() = default;
    // A job appeared (deploy(), seed(), or restored from the state directory).
    virtual void job_added(const JobStatus& status) = 0;
    // Any field changed; called at most about twice a second per job.
    virtual void job_changed(const JobStatus& status) = 0;
    // The job reached a final state (Completed, Failed, Cancelled) or, for a
    // deploy with seed_after, completed its deployment (then keeps Seeding).
    virtual void job_finished(const JobStatus& status, bool success,
                              const std::string& message) = 0;
    // Something worth a log line happened to a job (peer banned, hash failure, ...).
    virtual void job_log(const JobStatus& status, const std::string& message) {
        (void)status;
        (void)message;
    }
};

// How deployments write to block devices. Direct: past the page cache
// (O_DIRECT, see Target::use_direct_io), one copy less per byte and no
// write-back backlog; buffered: through it, which lets the kernel sort the
// writes of a spinning disk. Auto: direct unless the kernel says the disk is
// rotational.
enum class DirectIo { Auto, Always, Never };

struct EngineConfig {
    std::string listen_interface = "0.0.0.0";
    int listen_port = 6881;         // 0 = any free port
    std::string state_dir;          // jobs and resume data; empty = no persistence
    int resume_save_interval = 15;  // seconds between periodic resume saves
    int io_threads = 0;             // 0 = number of cores
    DirectIo direct_io = DirectIo::Auto;
    bool local_discovery = true;      // BitTorrent Local Service Discovery
    bool paced_seeding = true;        // seeds show ezio receivers pieces a few at a time
                                      // (paced_seed.hpp)
    int connections_per_torrent = 0;  // 0 = default
    std::string user_agent = "ezio";
};

class Engine {
  public:
    Engine(EngineConfig config, EngineObserver* observer);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Readable when process() has work; never closes while the Engine lives.
    int event_fd() const;
    // Handles libtorrent alerts and timers; runs observer callbacks.
    void process();
    // How long the owner may sleep before calling process() again.
    std::chrono::milliseconds next_timeout() const;

    // Starts writing the image described by `torrent` onto `target` (a block
    // device, or a regular file with allow_file). The target is opened
    // (O_EXCL for block devices) and validated before this returns; nothing
    // is written until then. Throws InvalidTorrent, InvalidTarget, TargetBusy.
    JobId deploy(std::span<const char> torrent, const std::string& target,
                 const JobOptions& options, bool allow_file = false);
    // Serves the image from `source` (device or image file), read-only.
    JobId seed(std::span<const char> torrent, const std::string& source, const JobOptions& options);

    void pause(JobId id);   // NotFound, NotSupported (final state)
    void resume(JobId id);  // NotFound, NotSupported
    void cancel(JobId id);  // NotFound; a final job is just forgotten
    // Forget a final job (removes it from jobs()).
    void remove(JobId id);
    // Fails (Errc::IoError, `why`) every unfinished job whose target or seed
    // source is `device_node` ("/dev/sdb", as in JobStatus::target): the
    // owner calls it when that device disappeared. Other jobs are untouched.
    // Returns the ids of the jobs it failed.
    std::vector<JobId> fail_jobs_on(const std::string& device_node, const std::string& why);

    std::optional<JobStatus> status(JobId id) const;
    std::vector<JobId> jobs() const;
    // The port libtorrent actually listens on (after binding).
    int listen_port() const;

    // Brings back every unfinished job saved in EngineConfig::state_dir (after
    // a crash, a power cut or a restart) under its old id; pieces that were
    // durably written are not fetched again. A job that cannot come back
    // (target gone, state unreadable) appears as Failed with the reason.
    // Call once, after the observer is ready; returns the restored ids.
    std::vector<JobId> restore();

    // Saves resume data of every job (after flushing its target) and stops
    // the session; blocks until done.
    void shutdown();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ezio
