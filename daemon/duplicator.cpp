#include "duplicator.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <sdbus-c++/sdbus-c++.h>

#include "autodeploy.hpp"
#include "cli_format.hpp"
#include "fetch.hpp"
#include "log.hpp"
#include "options.hpp"

namespace ezio::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kFetchPoll{200};
constexpr milliseconds kIdle{60'000};

milliseconds until(Clock::time_point when) {
    const auto left = std::chrono::ceil<milliseconds>(when - Clock::now());
    return std::max(left, milliseconds(0));
}

}  // namespace

// Shared between the main thread and the fetching thread; the thread is
// detached, so a shutdown never waits for a slow server.
struct Duplicator::Fetch {
    std::mutex mutex;
    bool done = false;
    std::vector<char> data;
    std::optional<Errc> error;
    std::string message;
};

Duplicator::Duplicator(Daemon& daemon, DuplicatorConfig config)
    : daemon_(daemon), config_(std::move(config)) {
    log::notice("duplicator: deploying " + config_.torrent + " onto every new disk that matches " +
                config_.match.describe());
    start_fetch();
}

Duplicator::~Duplicator() = default;

void Duplicator::start_fetch() {
    phase_ = Phase::Fetching;
    fetch_ = std::make_shared<Fetch>();
    auto shared = fetch_;
    const std::string location = config_.torrent;
    std::thread([shared, location] {
        std::vector<char> data;
        std::optional<Errc> error;
        std::string message;
        try {
            data = fetch(location);
        } catch (const Error& e) {
            error = e.code();
            message = e.what();
        } catch (const std::exception& e) {
            error = Errc::Failed;
            message = e.what();
        }
        std::lock_guard lock(shared->mutex);
        shared->data = std::move(data);
        shared->error = error;
        shared->message = std::move(message);
        shared->done = true;
    }).detach();
}

void Duplicator::fetch_finished() {
    std::vector<char> data;
    std::optional<Errc> error;
    std::string message;
    {
        std::lock_guard lock(fetch_->mutex);
        data = std::move(fetch_->data);
        error = fetch_->error;
        message = std::move(fetch_->message);
    }
    fetch_.reset();
    if (error) {
        message_ = "cannot fetch " + config_.torrent + ": " + message;
        if (*error == Errc::Failed) {
            // The network or the server may not be up yet.
            phase_ = Phase::WaitingRetry;
            next_fetch_ = Clock::now() + kFetchRetryDelay;
            log::warning("duplicator: " + message_ + "; retrying in " +
                         std::to_string(kFetchRetryDelay.count()) + " s");
        } else {
            phase_ = Phase::Off;
            log::error("duplicator: " + message_ + "; no disk will be deployed");
        }
        return;
    }
    try {
        info_hash_ = torrent_info_hash(data);
    } catch (const Error& e) {
        phase_ = Phase::Off;
        message_ = config_.torrent + ": " + e.what();
        log::error("duplicator: " + message_ + "; no disk will be deployed");
        return;
    }
    torrent_ = std::move(data);
    phase_ = Phase::Ready;
    log::notice("duplicator: ready, image " + info_hash_ + " (" + std::to_string(torrent_.size()) +
                " bytes of torrent)" +
                (queue_.empty() ? "" : ", " + std::to_string(queue_.size()) + " disk(s) waiting"));
}

void Duplicator::disk_added(const DiskInfo& disk) {
    if (phase_ == Phase::Off)
        return;
    if (!config_.match.matches(disk)) {
        log::debug("duplicator: " + disk.name + " does not match");
        return;
    }
    const auto queued = std::find_if(queue_.begin(), queue_.end(),
                                     [&](const Slot& s) { return s.name == disk.name; });
    if (queued != queue_.end())
        return;
    queue_.push_back(Slot{disk.name, disk.node, 0, Clock::now()});
    log::notice("duplicator: " + disk.node + " (" + format_bytes(disk.size) +
                (disk.model.empty() ? "" : ", " + disk.model) + ") matches; " +
                (queue_.size() == 1 ? "next in turn"
                                    : std::to_string(queue_.size() - 1) + " disk(s) before it"));
}

void Duplicator::disk_removed(const DiskInfo& disk) {
    const auto before = queue_.size();
    std::erase_if(queue_, [&](const Slot& s) { return s.name == disk.name; });
    if (queue_.size() != before)
        log::notice("duplicator: " + disk.node + " went away before its turn");
}

bool Duplicator::busy() const {
    auto& engine = daemon_.engine();
    for (const JobId id : engine.jobs()) {
        const auto st = engine.status(id);
        if (st && !is_final(st->state) && st->info_hash == info_hash_)
            return true;
    }
    return false;
}

void Duplicator::tick() {
    try {
        if (phase_ == Phase::Fetching) {
            bool done = false;
            {
                std::lock_guard lock(fetch_->mutex);
                done = fetch_->done;
            }
            if (done)
                fetch_finished();
        } else if (phase_ == Phase::WaitingRetry && Clock::now() >= next_fetch_) {
            start_fetch();
        }
        if (phase_ == Phase::Ready && !queue_.empty() && !busy())
            start_next();
    } catch (const std::exception& e) {
        // Nothing here should throw; if it does, the duplicator must not take
        // eziod down with it.
        log::error(std::string("duplicator: ") + e.what());
    }
}

void Duplicator::start_next() {
    const auto now = Clock::now();
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [&](const Slot& s) { return s.not_before <= now; });
    if (it == queue_.end())
        return;
    Slot slot = std::move(*it);
    queue_.erase(it);

    JobOptions options;
    options.peers = config_.peers;
    options.verify = config_.verify;
    VariantMap published;
    if (config_.verify)
        published.emplace("verify", sdbus::Variant(true));
    if (!config_.peers.empty())
        published.emplace("peers", sdbus::Variant(config_.peers));
    JobId id = 0;
    try {
        daemon_.publish_job(published, [&] {
            id = daemon_.engine().deploy(torrent_, slot.node, options);
            return id;
        });
    } catch (const Error& e) {
        if (e.code() == Errc::TargetBusy && ++slot.attempts < kMaxAttempts) {
            log::info("duplicator: " + slot.node + " is busy (" + e.what() + "); trying again");
            slot.not_before = now + kBusyRetryDelay;
            queue_.push_front(std::move(slot));
            return;
        }
        log::warning("duplicator: not deploying onto " + slot.node + ": " + e.what());
        return;
    } catch (const std::exception& e) {
        log::error("duplicator: cannot start the deployment onto " + slot.node + ": " + e.what());
        return;
    }
    if (auto st = daemon_.engine().status(id))
        log::job(LogLevel::Notice, *st,
                 "duplicator: deploying " + config_.torrent + " onto " + slot.node);
}

std::chrono::milliseconds Duplicator::next_timeout() const {
    switch (phase_) {
        case Phase::Fetching:
            return kFetchPoll;
        case Phase::WaitingRetry:
            return until(next_fetch_);
        case Phase::Ready: {
            // A running job ends with an engine event, which wakes the loop
            // and so tick(); only a retry delay is our own timer.
            if (queue_.empty() || busy())
                return kIdle;
            auto soonest = queue_.front().not_before;
            for (const auto& s : queue_)
                soonest = std::min(soonest, s.not_before);
            return std::max(until(soonest), milliseconds(10));
        }
        case Phase::Off:
            break;
    }
    return kIdle;
}

std::string Duplicator::status_line(const std::string& jobs_line) const {
    std::string head;
    switch (phase_) {
        case Phase::Fetching:
            head = "Duplicator: fetching " + config_.torrent;
            break;
        case Phase::WaitingRetry:
            head = "Duplicator: " + message_ + ", retrying";
            break;
        case Phase::Ready:
            head = queue_.empty()
                       ? "Duplicator: waiting for disks"
                       : "Duplicator: " + std::to_string(queue_.size()) + " disk(s) waiting";
            break;
        case Phase::Off:
            head = "Duplicator off: " + message_;
            break;
    }
    return head + "; " + jobs_line;
}

}  // namespace ezio::daemon
