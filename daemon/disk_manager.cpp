#include "disk_manager.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "cli_format.hpp"
#include "log.hpp"

namespace ezio::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kIdle{60'000};

// The same medium under the same name (a new monitor reports every disk
// again): the kernel's DISKSEQ is new for every medium and loop attach.
bool same_medium(const DiskInfo& a, const DiskInfo& b) {
    if (a.devnum != b.devnum || a.is_partition != b.is_partition)
        return false;
    auto x = a.properties.find("DISKSEQ");
    auto y = b.properties.find("DISKSEQ");
    return x == a.properties.end() || y == b.properties.end() || x->second == y->second;
}

std::string describe(const DiskInfo& disk) {
    std::string out = disk.node + ", " + format_bytes(disk.size);
    if (!disk.model.empty())
        out += ", " + disk.model;
    if (!disk.in_use_reason.empty())
        out += ", in use: " + disk.in_use_reason;
    return out;
}

}  // namespace

DiskManager::DiskManager(sdbus::IConnection& bus, Daemon& daemon,
                         const DuplicatorConfig& duplicator)
    : bus_(bus), daemon_(daemon) {
    if (duplicator.enabled())
        duplicator_ = std::make_unique<Duplicator>(daemon_, duplicator);
    start_monitor();
    const auto deadline = Clock::now() + kStartWait;
    while (monitor_ && first_batch_ && Clock::now() < deadline) {
        pollfd pfd{monitor_->fd(), POLLIN, 0};
        const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
        const int n =
            ::poll(&pfd, 1, static_cast<int>(std::max<milliseconds::rep>(left.count(), 0)));
        if (n < 0 && errno != EINTR) {
            log::warning(std::string("waiting for the disk list: poll: ") + std::strerror(errno));
            break;
        }
        if (n > 0)
            read_events();
    }
    if (monitor_ && first_batch_)
        log::info("no disk listed within " + std::to_string(kStartWait.count()) +
                  " ms; disks will appear on the bus as they are found");
    // Disks found later in this first batch are still not new ones.
}

DiskManager::~DiskManager() {
    // The monitor's worker first, then the objects (InterfacesRemoved).
    monitor_.reset();
    duplicator_.reset();
    disks_.clear();
}

int DiskManager::fd() const {
    return monitor_ ? monitor_->fd() : -1;
}

void DiskManager::start_monitor() {
    try {
        monitor_ = std::make_unique<DiskMonitor>();
        first_batch_ = true;
        retry_delay_ = kFirstRetryDelay;
        log::info(std::string("watching disks through ") +
                  (monitor_->uses_udev() ? "udev events"
                                         : "kernel uevents (systemd-udevd is not running)"));
    } catch (const std::exception& e) {
        monitor_.reset();
        retry_at_ = Clock::now() + retry_delay_;
        log::error(std::string("cannot watch disks: ") + e.what() + "; trying again in " +
                   std::to_string(retry_delay_.count()) + " s");
        retry_delay_ = std::min(retry_delay_ * 2, std::chrono::seconds(kMaxRetryDelay));
    }
}

void DiskManager::tick() {
    try {
        if (!monitor_ && Clock::now() >= retry_at_)
            start_monitor();
        if (monitor_)
            read_events();
    } catch (const std::exception& e) {
        // Bus errors while exporting are logged where they happen; this is
        // the last line of defence for the main loop.
        log::error(std::string("disks: ") + e.what());
    }
    if (duplicator_)
        duplicator_->tick();
}

void DiskManager::read_events() {
    std::vector<DiskEvent> events;
    try {
        events = monitor_->read_events();
    } catch (const std::exception& e) {
        log::error(std::string("disk monitor stopped: ") + e.what() + "; starting a new one");
        monitor_.reset();
        start_monitor();
        return;
    }
    if (events.empty())
        return;
    if (first_batch_) {
        // Everything present is in this batch: objects of disks that are
        // not went away while no monitor was watching.
        std::set<std::string> present;
        for (const auto& e : events)
            if (e.kind == DiskEvent::Kind::Added)
                present.insert(e.disk.name);
        std::vector<DiskInfo> gone;
        for (const auto& [name, object] : disks_)
            if (!present.count(name))
                gone.push_back(object->disk());
        for (const auto& disk : gone)
            removed(disk);
    }
    // Disks listed by the very first batch were there when eziod started.
    const bool claimable = started_;
    for (const auto& e : events) {
        switch (e.kind) {
            case DiskEvent::Kind::Added:
                added(e.disk, claimable);
                break;
            case DiskEvent::Kind::Changed:
                changed(e.disk);
                break;
            case DiskEvent::Kind::Removed:
                removed(e.disk);
                break;
        }
    }
    if (first_batch_ && !started_)
        log::info("found " + std::to_string(disks_.size()) + " disk(s) and partition(s)");
    first_batch_ = false;
    started_ = true;
}

void DiskManager::added(const DiskInfo& disk, bool claimable) {
    if (auto it = disks_.find(disk.name); it != disks_.end()) {
        // Only a new monitor's first batch reports a known disk as added.
        if (same_medium(it->second->disk(), disk)) {
            changed(disk);
            return;
        }
        removed(it->second->disk());
    }
    try {
        disks_.emplace(disk.name, std::make_unique<DiskObject>(bus_, disk));
    } catch (const std::exception& e) {
        log::error("cannot put disk " + disk.name + " on the bus: " + e.what());
        return;
    }
    if (!claimable) {
        log::debug("disk " + disk.name + ": " + describe(disk));
        return;
    }
    log::info("disk " + disk.name + " appeared: " + describe(disk));
    if (duplicator_)
        duplicator_->disk_added(disk);
}

void DiskManager::changed(const DiskInfo& disk) {
    auto it = disks_.find(disk.name);
    if (it == disks_.end()) {
        // The monitor reports Added first; never mind, export it now (not
        // for the duplicator: it is not known to be new).
        added(disk, false);
        return;
    }
    try {
        if (it->second->disk().in_use_reason != disk.in_use_reason)
            log::info("disk " + disk.name +
                      (disk.in_use() ? " in use: " + disk.in_use_reason : " no longer in use"));
        it->second->update(disk);
    } catch (const std::exception& e) {
        log::error("cannot update disk " + disk.name + " on the bus: " + e.what());
    }
}

void DiskManager::removed(const DiskInfo& disk) {
    if (auto it = disks_.find(disk.name); it != disks_.end()) {
        // The destructor sends InterfacesRemoved and logs its own failure.
        disks_.erase(it);
        log::info("disk " + disk.name + " went away");
    }
    if (duplicator_)
        duplicator_->disk_removed(disk);
    const auto failed = daemon_.engine().fail_jobs_on(
        disk.node, disk.node + " went away (unplugged, detached, or its medium removed)");
    for (const JobId id : failed)
        log::warning("disk " + disk.name + " went away: job " + std::to_string(id) + " failed");
}

milliseconds DiskManager::next_timeout() const {
    milliseconds timeout = kIdle;
    if (!monitor_)
        timeout =
            std::max(std::chrono::ceil<milliseconds>(retry_at_ - Clock::now()), milliseconds(0));
    if (duplicator_)
        timeout = std::min(timeout, duplicator_->next_timeout());
    return timeout;
}

std::string DiskManager::status_line(const std::string& jobs_line) const {
    return duplicator_ ? duplicator_->status_line(jobs_line) : jobs_line;
}

}  // namespace ezio::daemon
