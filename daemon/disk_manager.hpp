// eziod's disks: a DiskMonitor whose events become Disk objects on the bus
// (/org/ezio/Ezio1/disk/NAME, org.ezio.Ezio1.Disk), fail the jobs of a disk
// that goes away, and feed the hot-plug Duplicator when one is configured.
//
//   Added    -> export a DiskObject (InterfacesAdded); offer the disk to the
//               duplicator, unless it was there when eziod started
//   Changed  -> PropertiesChanged on its object
//   Removed  -> unexport it (InterfacesRemoved); every unfinished job that
//               writes to it or seeds from it fails (Engine::fail_jobs_on);
//               it leaves the duplicator's queue
//
// If the monitor cannot be created, or stops on an error (read_events()
// throws), that is logged and a new monitor is made: at once after a
// failure, then with growing delays while creating it fails. A new
// monitor's first batch lists everything present, so objects of disks that
// went away meanwhile are removed then.
//
// Threading: main thread only. The monitor probes disks on its own thread;
// fd() becomes readable when it has events. Ownership: the Daemon outlives
// this object.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <sdbus-c++/IConnection.h>

#include "config.hpp"
#include "daemon.hpp"
#include "disk_monitor.hpp"
#include "disk_object.hpp"
#include "duplicator.hpp"

namespace ezio::daemon {

class DiskManager {
  public:
    static constexpr std::chrono::milliseconds kStartWait{1000};
    static constexpr std::chrono::seconds kFirstRetryDelay{5};
    static constexpr std::chrono::seconds kMaxRetryDelay{300};

    // Starts the monitor and waits up to kStartWait for its first batch, so
    // the disks present are on the bus before eziod owns its name. Starts
    // the duplicator when `duplicator` is enabled. Throws only what the
    // duplicator's constructor throws; monitor failures are logged and
    // retried.
    DiskManager(sdbus::IConnection& bus, Daemon& daemon, const DuplicatorConfig& duplicator);
    ~DiskManager();
    DiskManager(const DiskManager&) = delete;
    DiskManager& operator=(const DiskManager&) = delete;

    // Readable (POLLIN) when tick() has disk events to handle; -1 while
    // there is no monitor (poll(2) ignores it).
    int fd() const;
    // Handles queued disk events (never blocks), restarts a failed monitor
    // when due, and advances the duplicator. Call from the main loop after
    // every poll round. Never throws.
    void tick();
    // How long the main loop may sleep before tick() has timed work.
    std::chrono::milliseconds next_timeout() const;
    // The STATUS= line, with the duplicator's state in front when there is
    // one.
    std::string status_line(const std::string& jobs_line) const;

  private:
    void start_monitor();
    void read_events();
    void added(const DiskInfo& disk, bool claimable);
    void changed(const DiskInfo& disk);
    void removed(const DiskInfo& disk);

    sdbus::IConnection& bus_;
    Daemon& daemon_;
    std::unique_ptr<Duplicator> duplicator_;
    std::unique_ptr<DiskMonitor> monitor_;
    std::map<std::string, std::unique_ptr<DiskObject>> disks_;  // by kernel name
    // The next batch is a new monitor's first: it lists every disk present.
    bool first_batch_ = true;
    // A first batch was handled: disks added from now on are new ones.
    bool started_ = false;
    std::chrono::steady_clock::time_point retry_at_;
    std::chrono::seconds retry_delay_ = kFirstRetryDelay;
};

}  // namespace ezio::daemon
