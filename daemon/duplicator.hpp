// eziod's hot-plug duplicator: every new disk that matches the [duplicator]
// section of eziod.conf (DuplicatorMatch: a udev property, a by-path slot, a
// size range) gets the configured image, as an ordinary deploy job on the
// bus.
//
// Behaviour:
//  - The torrent is fetched once, on a thread of its own (TorrentFetch: a
//    URL may take a while); network errors are retried, the delay doubling
//    up to kFetchRetryDelay, for as long as it takes; anything else (a
//    missing file, bytes that are not an image torrent) switches the
//    duplicator off with an error in the journal and the STATUS= line.
//    Disks that match meanwhile wait for it.
//  - Only disks that appear while eziod runs are claimed (DiskManager calls
//    disk_added() for those alone): a restart of eziod never rewrites the
//    disks that are already plugged in.
//  - Every matching disk starts at once: the bays are written side by side.
//    The Engine runs each job of the image in its own libtorrent session and
//    makes them peers of each other over loopback, so a disk plugged in late
//    gets most of the image from the bays before it, at disk speed, and the
//    seeders' uplink carries each piece about once. A disk pulled while it
//    is written fails its own job (DiskManager calls Engine::fail_jobs_on());
//    the other bays go on.
//  - Engine::deploy() has the last word (check_target(): in use, read-only,
//    too small, partitions on a whole disk, EZIO_IGNORE): a refusal is
//    logged and the disk is dropped. TargetBusy is retried a few times,
//    since a disk that just appeared may still be probed by udev.
//
// Threading: main thread only, except the fetch, which touches nothing but
// its own shared state. Ownership: the Daemon outlives this object.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "daemon.hpp"
#include "disk_info.hpp"
#include "torrent_fetch.hpp"

namespace ezio::daemon {

class Duplicator {
  public:
    static constexpr std::chrono::seconds kFetchRetryDelay{15};
    static constexpr std::chrono::seconds kBusyRetryDelay{1};
    static constexpr int kMaxAttempts = 5;  // per disk, while the target is busy

    // Starts fetching config.torrent. `config` must be enabled() and its
    // match valid (parse_config() checks both).
    Duplicator(Daemon& daemon, DuplicatorConfig config);
    ~Duplicator();
    Duplicator(const Duplicator&) = delete;
    Duplicator& operator=(const Duplicator&) = delete;

    // A disk appeared while eziod runs: deployed (on the next tick()) when it
    // matches.
    void disk_added(const DiskInfo& disk);
    // A disk went away: dropped if its deployment has not started.
    void disk_removed(const DiskInfo& disk);

    // Advances the fetch and starts the deployments that are due.
    // Never throws.
    void tick();
    // How long the main loop may sleep before tick() has work.
    std::chrono::milliseconds next_timeout() const;
    // The STATUS= line: the duplicator's state in front of `jobs_line`.
    std::string status_line(const std::string& jobs_line) const;

  private:
    enum class Phase { Fetching, WaitingRetry, Ready, Off };
    struct Slot {
        std::string name;  // "sdb"
        std::string node;  // "/dev/sdb"
        int attempts = 0;
        std::chrono::steady_clock::time_point not_before;
    };

    void fetch_progress();
    // Starts the deployment onto `slot`; a busy disk goes back into `retry`.
    void start(Slot slot, std::deque<Slot>& retry);

    Daemon& daemon_;
    DuplicatorConfig config_;
    Phase phase_ = Phase::Fetching;
    std::string message_;                  // why Off / WaitingRetry
    std::unique_ptr<TorrentFetch> fetch_;  // until the torrent is here
    std::vector<char> torrent_;
    std::string info_hash_;
    std::deque<Slot> pending_;  // matching disks not started yet
};

}  // namespace ezio::daemon
