#include "disk_monitor.hpp"

#include <fcntl.h>
#include <libudev.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "disk_udev.hpp"
#include "disk_usage.hpp"
#include "error.hpp"

namespace ezio {
namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

}  // namespace

std::string_view disk_event_kind_name(DiskEvent::Kind kind) {
    switch (kind) {
        case DiskEvent::Kind::Added:
            return "added";
        case DiskEvent::Kind::Changed:
            return "changed";
        case DiskEvent::Kind::Removed:
            return "removed";
    }
    return "unknown";
}

struct DiskMonitor::Impl {
    detail::UdevContext udev;
    udev_monitor* monitor = nullptr;
    bool uses_udev = false;
    Fd ready{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};  // worker -> owner
    Fd stop{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};   // owner -> worker
    std::thread worker;

    std::mutex mutex;  // guards queue and failure
    std::deque<DiskEvent> queue;
    std::optional<Error> failure;

    // Worker thread only: what the owner was last told about each device.
    std::map<std::string, DiskInfo> known;

    ~Impl() {
        if (monitor)
            udev_monitor_unref(monitor);
    }

    void signal_ready() {
        const std::uint64_t one = 1;
        // EAGAIN only when the counter would overflow: it is readable then.
        if (::write(ready.get(), &one, sizeof one) < 0 && errno != EAGAIN) {
            // The owner would never wake: record it where read_events looks.
            std::lock_guard lock(mutex);
            if (!failure)
                failure.emplace(Errc::Failed,
                                "disk monitor cannot signal its owner: " + errno_text(errno));
        }
    }

    void push(std::vector<DiskEvent>&& events) {
        if (events.empty())
            return;
        {
            std::lock_guard lock(mutex);
            for (auto& e : events)
                queue.push_back(std::move(e));
        }
        signal_ready();
    }

    // Re-reads the devices in `scope` (all of them when nullopt) and queues
    // what changed. `uevent`: names a uevent was received for; those get a
    // Changed even when nothing we track differs.
    void refresh(const std::optional<std::set<std::string>>& scope,
                 const std::set<std::string>& uevent) {
        detail::UdevContext ctx;
        auto table = detail::read_disk_table(ctx.get());
        const SystemUsage system = SystemUsage::read(table);

        std::set<std::string> names;
        if (scope) {
            for (const auto& n : *scope) {
                names.insert(n);
                // A partition appearing changes its disk's partition list and
                // in-use state; a disk going takes its partitions along.
                if (auto it = table.find(n); it != table.end() && it->second.is_partition)
                    names.insert(it->second.parent);
                if (auto it = known.find(n); it != known.end()) {
                    if (it->second.is_partition)
                        names.insert(it->second.parent);
                    for (const auto& p : it->second.partitions)
                        names.insert(p);
                }
            }
        } else {
            for (const auto& [n, d] : table)
                names.insert(n);
            for (const auto& [n, d] : known)
                names.insert(n);
        }

        // Removals are reported before additions, so that a device replaced
        // under the same name within one batch (a disk swapped in its bay,
        // a loop device detached and attached again) reads as removed, then
        // added: the kernel's DISKSEQ, new for every medium, tells them apart.
        std::vector<DiskEvent> events;
        std::vector<DiskEvent> added_or_changed;
        std::set<std::string> replaced;
        const auto is_replacement = [&](const DiskInfo& old, const DiskInfo& now) {
            if (old.devnum != now.devnum || old.is_partition != now.is_partition)
                return true;
            if (now.is_partition)
                return replaced.count(now.parent) > 0;
            auto a = old.properties.find("DISKSEQ");
            auto b = now.properties.find("DISKSEQ");
            return a != old.properties.end() && b != now.properties.end() && a->second != b->second;
        };
        // Disks first: a partition's replacement follows its disk's.
        for (const bool partitions : {false, true}) {
            for (const auto& n : names) {
                auto it = table.find(n);
                auto k = known.find(n);
                const DiskInfo* now = it != table.end() ? &it->second : nullptr;
                const DiskInfo* was = k != known.end() ? &k->second : nullptr;
                if ((now ? now->is_partition : was && was->is_partition) != partitions)
                    continue;
                const bool listed = now && detail::listed_in(*now, table);
                if (was && (!listed || is_replacement(*was, *now))) {
                    if (listed)
                        replaced.insert(n);
                    events.push_back({DiskEvent::Kind::Removed, std::move(k->second)});
                    known.erase(k);
                    was = nullptr;
                }
                if (!listed)
                    continue;
                DiskInfo info = *now;
                // No exclusive-open probe here: it would run on every uevent and
                // could make a concurrent mkfs or mount fail as busy. Deploy
                // probes (check_target) and then opens the target O_EXCL.
                detail::fill_in_use(info, table, system, false);
                if (!was) {
                    known.emplace(n, info);
                    added_or_changed.push_back({DiskEvent::Kind::Added, std::move(info)});
                } else if (!(*was == info) || uevent.count(n)) {
                    k->second = info;
                    added_or_changed.push_back({DiskEvent::Kind::Changed, std::move(info)});
                }
            }
        }
        // Partitions go before their disk, and come after it.
        std::stable_partition(events.begin(), events.end(),
                              [](const DiskEvent& e) { return e.disk.is_partition; });
        std::stable_partition(added_or_changed.begin(), added_or_changed.end(),
                              [](const DiskEvent& e) { return !e.disk.is_partition; });
        for (auto& e : added_or_changed)
            events.push_back(std::move(e));
        push(std::move(events));
    }

    // Drains the netlink socket; returns the names of block devices seen.
    std::set<std::string> drain_monitor() {
        std::set<std::string> names;
        for (;;) {
            udev_device* dev = udev_monitor_receive_device(monitor);
            if (!dev)
                break;  // EAGAIN, or a message libudev filtered out
            const char* type = udev_device_get_devtype(dev);
            const char* name = udev_device_get_sysname(dev);
            if (type && name &&
                (std::strcmp(type, "disk") == 0 || std::strcmp(type, "partition") == 0))
                names.insert(name);
            udev_device_unref(dev);
        }
        return names;
    }

    void run() {
        try {
            loop();
        } catch (const Error& e) {
            std::lock_guard lock(mutex);
            failure = e;
        } catch (const std::exception& e) {
            std::lock_guard lock(mutex);
            failure.emplace(Errc::Failed, std::string("disk monitor: ") + e.what());
        }
        signal_ready();
    }

    void loop() {
        // Mount and swap tables: poll() reports POLLPRI|POLLERR when they
        // change (proc(5)); mounting a device sends no uevent.
        Fd mountinfo(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
        if (mountinfo.get() < 0)
            throw Error(Errc::Failed, "cannot open /proc/self/mountinfo: " + errno_text(errno));
        Fd swaps(::open("/proc/swaps", O_RDONLY | O_CLOEXEC));
        if (swaps.get() < 0)
            throw Error(Errc::Failed, "cannot open /proc/swaps: " + errno_text(errno));

        refresh(std::nullopt, {});
        // After a mount or swap change, look again a little later: umount
        // updates the mount table before the kernel lets go of the device,
        // and that release sends no notification of its own.
        using Clock = std::chrono::steady_clock;
        std::vector<Clock::time_point> rechecks;
        for (;;) {
            pollfd fds[4] = {
                {stop.get(), POLLIN, 0},
                {udev_monitor_get_fd(monitor), POLLIN, 0},
                {mountinfo.get(), POLLPRI, 0},
                {swaps.get(), POLLPRI, 0},
            };
            int timeout = -1;
            if (!rechecks.empty()) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    rechecks.front() - Clock::now());
                timeout = static_cast<int>(std::max<std::int64_t>(0, left.count()));
            }
            const int n = ::poll(fds, 4, timeout);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                throw Error(Errc::Failed, "disk monitor: poll: " + errno_text(errno));
            }
            if (fds[0].revents)
                return;
            bool full = false;
            if ((fds[2].revents | fds[3].revents) != 0) {
                full = true;
                const auto now = Clock::now();
                rechecks = {now + std::chrono::milliseconds(200), now + std::chrono::seconds(1)};
            } else if (!rechecks.empty() && rechecks.front() <= Clock::now()) {
                full = true;
                rechecks.erase(rechecks.begin());
            }
            std::set<std::string> names;
            if (fds[1].revents & POLLIN)
                names = drain_monitor();
            if (fds[1].revents & POLLERR) {
                // ENOBUFS: the kernel dropped uevents; only a full re-read
                // tells what happened. Reading clears the socket error.
                drain_monitor();
                full = true;
            }
            if (full)
                refresh(std::nullopt, names);
            else if (!names.empty())
                refresh(names, names);
        }
    }
};

DiskMonitor::DiskMonitor(Source source) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    if (m.ready.get() < 0 || m.stop.get() < 0)
        throw Error(Errc::Failed, "disk monitor: eventfd: " + errno_text(errno));
    bool udev = source == Source::Udev;
    if (source == Source::Auto)
        udev = ::access("/run/udev/control", F_OK) == 0;
    m.uses_udev = udev;
    m.monitor = udev_monitor_new_from_netlink(m.udev.get(), udev ? "udev" : "kernel");
    if (!m.monitor)
        throw Error(Errc::Failed, std::string("cannot listen to ") + (udev ? "udev" : "kernel") +
                                      " uevents: " + errno_text(errno ? errno : EPERM));
    int r = udev_monitor_filter_add_match_subsystem_devtype(m.monitor, "block", nullptr);
    if (r >= 0)
        r = udev_monitor_enable_receiving(m.monitor);
    if (r < 0)
        throw Error(Errc::Failed, std::string("cannot listen to ") + (udev ? "udev" : "kernel") +
                                      " uevents: " + errno_text(-r));
    m.worker = std::thread([&m] { m.run(); });
}

DiskMonitor::~DiskMonitor() {
    const std::uint64_t one = 1;
    // If this write failed the worker could never be stopped; eventfd
    // writes of 1 fail only on counter overflow, which cannot happen here.
    [[maybe_unused]] const ssize_t n = ::write(impl_->stop.get(), &one, sizeof one);
    if (impl_->worker.joinable())
        impl_->worker.join();
}

int DiskMonitor::fd() const {
    return impl_->ready.get();
}

bool DiskMonitor::uses_udev() const {
    return impl_->uses_udev;
}

std::vector<DiskEvent> DiskMonitor::read_events() {
    std::uint64_t count = 0;
    // Clear readiness before taking the queue: an event pushed in between
    // leaves the fd readable, so it is never missed (at worst one empty read).
    if (::read(impl_->ready.get(), &count, sizeof count) < 0 && errno != EAGAIN)
        throw Error(Errc::Failed, "disk monitor: eventfd read: " + errno_text(errno));
    std::lock_guard lock(impl_->mutex);
    std::vector<DiskEvent> out(std::make_move_iterator(impl_->queue.begin()),
                               std::make_move_iterator(impl_->queue.end()));
    impl_->queue.clear();
    if (out.empty() && impl_->failure) {
        // Keep the fd readable so a poll loop comes back for the error too.
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(impl_->ready.get(), &one, sizeof one);
        throw *impl_->failure;
    }
    if (!out.empty() && impl_->failure) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(impl_->ready.get(), &one, sizeof one);
    }
    return out;
}

}  // namespace ezio
