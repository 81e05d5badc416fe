// eziod's auto-deploy on boot: fetches the configured torrent, starts the
// deployment as an ordinary job (on the bus like any other), follows it,
// records the outcome in the state directory, and then reboots or powers off
// through systemd, or keeps seeding, or does nothing (core/autodeploy.hpp
// decides; eziod.conf(5) tells users).
//
// Behaviour:
//  - The torrent is fetched on a thread of its own (a URL may take a while);
//    network errors are retried with back-off for kFetchRetryTime, since at
//    boot the network or the server may not be up yet. Anything else (a
//    missing local file, bytes that are not an image torrent) fails at once.
//  - A target that does not exist yet is waited for (kTargetWaitTime): disks
//    may appear after eziod starts.
//  - An image already recorded as deployed onto the target is not deployed
//    again (see find_completed()); an unfinished job of the same torrent
//    that the engine restored from the state directory is adopted instead of
//    starting a second one.
//  - The post-action runs only after a deployment that succeeded and was
//    recorded: StartUnit("reboot.target" / "poweroff.target",
//    "replace-irreversibly") on org.freedesktop.systemd1, what
//    `systemctl reboot` asks of systemd. Any failure leaves eziod up, says
//    why in the STATUS= line and in the journal, and never reboots.
//
// Threading: main thread only, except the fetch, which touches nothing but
// its own shared state. Ownership: the Daemon outlives this object.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <sdbus-c++/IConnection.h>

#include "autodeploy.hpp"
#include "daemon.hpp"
#include "torrent_fetch.hpp"

namespace ezio::daemon {

class AutoDeployer {
  public:
    static constexpr std::chrono::seconds kFetchRetryTime{120};
    static constexpr std::chrono::seconds kTargetWaitTime{60};

    struct Settings {
        AutoDeployConfig config;  // merged: eziod.conf + kernel command line
        // Why auto-deploy is off although it was asked for (a bad kernel
        // command line); shown in the STATUS= line. Empty when all is well.
        std::string error;
        std::string state_dir;  // empty: nothing can be recorded
        std::string boot_id;
    };

    AutoDeployer(sdbus::IConnection& bus, Daemon& daemon, Settings settings);
    ~AutoDeployer();
    AutoDeployer(const AutoDeployer&) = delete;
    AutoDeployer& operator=(const AutoDeployer&) = delete;

    // Advances the auto-deployment; call from the main loop after every
    // dispatch round. Never throws.
    void tick();
    // How long the main loop may sleep before the next tick() is due.
    std::chrono::milliseconds next_timeout() const;
    // The STATUS= line: auto-deploy's state in front of `jobs_line` (the
    // Daemon's summary of its jobs).
    std::string status_line(const std::string& jobs_line) const;

  private:
    enum class Phase {
        Off,
        Fetching,
        WaitingRetry,
        WaitingTarget,
        Running,  // the job deploys
        Seeding,  // deployed and recorded, seeding before the post-action
        Skipped,  // the image was deployed before; message_ says when
        Done,     // finished; message_ says how
        Failed,
    };
    void start_fetch();
    void fetch_progress();
    void try_start_job();
    void follow_job();
    void deployed(const JobStatus& status);
    void job_ended(const JobStatus& status);
    void fail(const std::string& message);
    void run_post_action(PostAction action);
    void save_last(const std::string& state, const std::string& message);

    sdbus::IConnection& bus_;
    Daemon& daemon_;
    Settings settings_;
    Phase phase_ = Phase::Off;
    std::string message_;                            // for the STATUS= line
    std::unique_ptr<TorrentFetch> fetch_;            // while Fetching / WaitingRetry
    std::chrono::steady_clock::time_point started_;  // of waiting for the target
    std::vector<char> torrent_;
    std::string info_hash_;
    std::string target_path_;
    std::optional<JobId> job_;
    bool recorded_ = false;
    AutoDeployState state_;
};

}  // namespace ezio::daemon
