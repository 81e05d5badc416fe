#include "duplicator.hpp"

#include <algorithm>
#include <utility>

#include <sdbus-c++/sdbus-c++.h>

#include "autodeploy.hpp"
#include "cli_format.hpp"
#include "log.hpp"
#include "options.hpp"

namespace ezio::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kIdle{60'000};

milliseconds until(Clock::time_point when) {
    const auto left = std::chrono::ceil<milliseconds>(when - Clock::now());
    return std::max(left, milliseconds(0));
}

}  // namespace

Duplicator::Duplicator(Daemon& daemon, DuplicatorConfig config)
    : daemon_(daemon), config_(std::move(config)) {
    log::notice("duplicator: deploying " + config_.torrent + " onto every new disk that matches " +
                config_.match.describe());
    RetryPolicy policy;
    policy.first_delay = std::chrono::seconds(1);
    policy.max_delay = kFetchRetryDelay;  // and forever: bays wait for the server
    fetch_ = std::make_unique<TorrentFetch>(config_.torrent, FetchOptions{}, policy);
}

Duplicator::~Duplicator() = default;

void Duplicator::fetch_progress() {
    switch (fetch_->poll()) {
        case TorrentFetch::Event::None:
            if (fetch_->state() == TorrentFetch::State::Fetching)
                phase_ = Phase::Fetching;
            return;
        case TorrentFetch::Event::AttemptFailed:
            phase_ = Phase::WaitingRetry;
            message_ = "cannot fetch " + config_.torrent + ": " + fetch_->error();
            log::warning("duplicator: " + message_ + "; retrying in " +
                         std::to_string(fetch_->retry_delay().count()) + " s");
            return;
        case TorrentFetch::Event::Failed:
            phase_ = Phase::Off;
            message_ = "cannot fetch " + config_.torrent + ": " + fetch_->error();
            log::error("duplicator: " + message_ + "; no disk will be deployed");
            fetch_.reset();
            return;
        case TorrentFetch::Event::Done:
            break;
    }
    std::vector<char> data = fetch_->take();
    fetch_.reset();
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
    log::notice(
        "duplicator: ready, image " + info_hash_ + " (" + std::to_string(torrent_.size()) +
        " bytes of torrent)" +
        (pending_.empty() ? "" : ", " + std::to_string(pending_.size()) + " disk(s) waiting"));
}

void Duplicator::disk_added(const DiskInfo& disk) {
    if (phase_ == Phase::Off)
        return;
    if (!config_.match.matches(disk)) {
        log::debug("duplicator: " + disk.name + " does not match");
        return;
    }
    const auto known = std::find_if(pending_.begin(), pending_.end(),
                                    [&](const Slot& s) { return s.name == disk.name; });
    if (known != pending_.end())
        return;
    pending_.push_back(Slot{disk.name, disk.node, 0, Clock::now()});
    log::notice("duplicator: " + disk.node + " (" + format_bytes(disk.size) +
                (disk.model.empty() ? "" : ", " + disk.model) + ") matches" +
                (phase_ == Phase::Ready ? "" : "; it waits for the torrent"));
}

void Duplicator::disk_removed(const DiskInfo& disk) {
    const auto before = pending_.size();
    std::erase_if(pending_, [&](const Slot& s) { return s.name == disk.name; });
    if (pending_.size() != before)
        log::notice("duplicator: " + disk.node + " went away before its deployment started");
}

void Duplicator::tick() {
    try {
        if (fetch_)
            fetch_progress();
        if (phase_ != Phase::Ready)
            return;
        // Every disk whose time has come starts now: the bays run side by
        // side (the engine gives each job of the image its own session).
        const auto now = Clock::now();
        std::deque<Slot> later;
        while (!pending_.empty()) {
            Slot slot = std::move(pending_.front());
            pending_.pop_front();
            if (slot.not_before > now)
                later.push_back(std::move(slot));
            else
                start(std::move(slot), later);
        }
        pending_ = std::move(later);
    } catch (const std::exception& e) {
        // Nothing here should throw; if it does, the duplicator must not take
        // eziod down with it.
        log::error(std::string("duplicator: ") + e.what());
    }
}

void Duplicator::start(Slot slot, std::deque<Slot>& retry) {
    const auto now = Clock::now();
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
            retry.push_back(std::move(slot));
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
    if (fetch_)
        return fetch_->next_timeout();
    if (phase_ != Phase::Ready || pending_.empty())
        return kIdle;
    auto soonest = pending_.front().not_before;
    for (const auto& s : pending_)
        soonest = std::min(soonest, s.not_before);
    return std::max(until(soonest), milliseconds(10));
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
            head = pending_.empty() ? "Duplicator: waiting for disks"
                                    : "Duplicator: " + std::to_string(pending_.size()) +
                                          " disk(s) busy, retrying";
            break;
        case Phase::Off:
            head = "Duplicator off: " + message_;
            break;
    }
    return head + "; " + jobs_line;
}

}  // namespace ezio::daemon
