#include "autodeployer.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include <sdbus-c++/sdbus-c++.h>

#include "cli_format.hpp"
#include "log.hpp"
#include "options.hpp"
#include "torrent_fetch.hpp"

namespace ezio::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kMaxRetryDelay{15};
constexpr std::size_t kMaxMessage = 200;

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::string shorten(std::string text) {
    for (auto& c : text)
        if (c == '\n' || c == '\r')
            c = ' ';
    if (text.size() > kMaxMessage)
        text = text.substr(0, kMaxMessage - 3) + "...";
    return text;
}

std::string short_hash(const std::string& hash) {
    return hash.substr(0, 12);
}

// The path a device target names, before resolving symlinks: "sda1" ->
// "/dev/sda1". Used only to tell "not there yet" from other refusals.
std::string unresolved_path(const std::string& target) {
    if (!target.empty() && target.front() == '/')
        return target;
    return "/dev/" + target;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

bool reboots(AfterDeploy then) {
    return then == AfterDeploy::Reboot || then == AfterDeploy::Poweroff;
}

}  // namespace

AutoDeployer::AutoDeployer(sdbus::IConnection& bus, Daemon& daemon, Settings settings)
    : bus_(bus), daemon_(daemon), settings_(std::move(settings)) {
    if (!settings_.state_dir.empty()) {
        try {
            state_ = load_autodeploy_state(settings_.state_dir);
        } catch (const Error& e) {
            // Starting afresh is safe: without a record we deploy again, and
            // a reboot needs the new record to be saved first.
            log::warning(std::string("auto-deploy: ") + e.what() + "; starting a new record");
        }
    }
    if (!settings_.error.empty()) {
        fail(settings_.error);
        return;
    }
    const auto& c = settings_.config;
    if (!c.enabled())
        return;
    log::notice("auto-deploy: " + c.torrent + " onto " + c.target + ", then " +
                std::string(to_string(c.then)) + (c.redeploy ? ", at every boot" : ""));
    if (settings_.state_dir.empty() && reboots(c.then))
        log::warning(
            "auto-deploy: no state directory, so the deployment cannot be recorded and "
            "eziod will not " +
            std::string(to_string(c.then)) + " afterwards (set state_dir or --state-dir)");
    started_ = Clock::now();
    start_fetch();
}

AutoDeployer::~AutoDeployer() = default;

void AutoDeployer::start_fetch() {
    phase_ = Phase::Fetching;
    FetchOptions options;
    options.total_timeout = seconds(300);
    RetryPolicy policy;
    policy.first_delay = seconds(1);
    policy.max_delay = kMaxRetryDelay;
    policy.give_up_after = kFetchRetryTime;
    fetch_ = std::make_unique<TorrentFetch>(settings_.config.torrent, options, policy);
}

void AutoDeployer::tick() {
    try {
        switch (phase_) {
            case Phase::Fetching:
            case Phase::WaitingRetry:
                fetch_progress();
                break;
            case Phase::WaitingTarget:
                try_start_job();
                break;
            case Phase::Running:
            case Phase::Seeding:
                follow_job();
                break;
            case Phase::Off:
            case Phase::Skipped:
            case Phase::Done:
            case Phase::Failed:
                break;
        }
    } catch (const std::exception& e) {
        fail(std::string("internal error: ") + e.what());
    }
}

void AutoDeployer::fetch_progress() {
    switch (fetch_->poll()) {
        case TorrentFetch::Event::None:
            if (fetch_->state() == TorrentFetch::State::Fetching)
                phase_ = Phase::Fetching;  // the next attempt started
            return;
        case TorrentFetch::Event::AttemptFailed: {
            // The network or the server may not be up yet while the machine
            // is still coming up.
            phase_ = Phase::WaitingRetry;
            const auto delay = std::to_string(fetch_->retry_delay().count());
            message_ = shorten(fetch_->error()) + "; retrying in " + delay + "s";
            log::warning("auto-deploy: " + fetch_->error() + " (attempt " +
                         std::to_string(fetch_->attempts()) + ", retrying in " + delay + " s)");
            return;
        }
        case TorrentFetch::Event::Failed: {
            const int attempts = fetch_->attempts();
            fail(
                "cannot fetch the torrent: " + fetch_->error() +
                (attempts > 1 ? " (gave up after " + std::to_string(attempts) + " attempts)" : ""));
            fetch_.reset();
            return;
        }
        case TorrentFetch::Event::Done:
            break;
    }
    const auto& torrent = settings_.config.torrent;
    torrent_ = fetch_->take();
    fetch_.reset();
    try {
        info_hash_ = torrent_info_hash(torrent_);
    } catch (const Error& e) {
        fail(torrent + " is not an image torrent: " + e.what());
        return;
    }
    log::info("auto-deploy: fetched " + torrent + " (" + std::to_string(torrent_.size()) +
              " bytes, info-hash " + info_hash_ + ")");
    started_ = Clock::now();
    try_start_job();
}

void AutoDeployer::try_start_job() {
    const auto& c = settings_.config;
    try {
        target_path_ = resolve_deploy_target(c.target, false);
    } catch (const Error& e) {
        if (e.code() == Errc::InvalidTarget && !exists(unresolved_path(c.target)) &&
            Clock::now() - started_ < kTargetWaitTime) {
            if (phase_ != Phase::WaitingTarget)
                log::notice("auto-deploy: waiting for " + c.target + " to appear");
            phase_ = Phase::WaitingTarget;
            return;
        }
        fail(std::string("target: ") + e.what());
        return;
    }

    if (const auto* done =
            find_completed(state_, info_hash_, target_path_, settings_.boot_id, c.redeploy)) {
        phase_ = Phase::Skipped;
        message_ = target_path_ + " already holds " + short_hash(info_hash_) + " (deployed " +
                   format_timestamp(done->time) +
                   (c.redeploy ? " in this boot" : "; set redeploy to deploy it again") + ")";
        log::notice("auto-deploy skipped: " + message_);
        save_last("skipped", message_);
        return;
    }

    auto& engine = daemon_.engine();
    // A deployment interrupted by a crash or a power cut came back from the
    // state directory: carry on with it.
    for (JobId id : engine.jobs()) {
        auto st = engine.status(id);
        if (!st || st->operation != Operation::Deploy || st->info_hash != info_hash_ ||
            is_final(st->state))
            continue;
        if (st->target != target_path_) {
            fail("job " + std::to_string(id) + " already deploys this image onto " + st->target);
            return;
        }
        job_ = id;
        phase_ = Phase::Running;
        log::job(LogLevel::Notice, *st, "auto-deploy: continuing the restored job");
        save_last("running", "deploying (restored job " + std::to_string(id) + ")");
        return;
    }

    JobOptions options;
    options.peers = c.peers;
    options.seed_after = effective_seed_time(c);
    VariantMap published{{"seed_after", sdbus::Variant(seed_time_to_string(options.seed_after))}};
    if (!c.peers.empty())
        published.emplace("peers", sdbus::Variant(c.peers));
    JobId id = 0;
    try {
        daemon_.publish_job(published, [&] {
            id = engine.deploy(torrent_, target_path_, options);
            return id;
        });
    } catch (const std::exception& e) {
        fail("cannot start the deployment onto " + target_path_ + ": " + e.what());
        return;
    }
    job_ = id;
    phase_ = Phase::Running;
    if (auto st = engine.status(id))
        log::job(LogLevel::Notice, *st,
                 "auto-deploy: deploying " + c.torrent + " onto " + target_path_);
    save_last("running", "deploying as job " + std::to_string(id));
}

void AutoDeployer::follow_job() {
    auto st = daemon_.engine().status(*job_);
    if (!st) {
        // Removed by a caller after it ended (Cancel of a finished job).
        if (phase_ == Phase::Seeding) {
            JobStatus gone;
            gone.id = *job_;
            gone.target = target_path_;
            gone.info_hash = info_hash_;
            job_ended(gone);
        } else {
            fail("job " + std::to_string(*job_) + " was removed before it finished");
        }
        return;
    }
    if (phase_ == Phase::Running) {
        if (st->state == JobState::Seeding || st->state == JobState::Completed) {
            deployed(*st);
            return;
        }
        if (st->state == JobState::Failed || st->state == JobState::Cancelled) {
            fail(st->state == JobState::Cancelled
                     ? "the deployment onto " + target_path_ + " was cancelled"
                     : "the deployment onto " + target_path_ + " failed: " + st->last_error);
            return;
        }
        return;
    }
    if (is_final(st->state))
        job_ended(*st);
}

void AutoDeployer::deployed(const JobStatus& status) {
    const auto& c = settings_.config;
    recorded_ = false;
    std::string record_error;
    if (settings_.state_dir.empty()) {
        record_error = "no state directory";
    } else {
        add_completed(state_, {info_hash_, target_path_, c.torrent, settings_.boot_id, now_us()});
        try {
            save_autodeploy_state(settings_.state_dir, state_);
            recorded_ = true;
        } catch (const Error& e) {
            record_error = e.what();
        }
    }
    if (recorded_) {
        log::job(LogLevel::Notice, status,
                 "auto-deploy: " + target_path_ + " holds the image; recorded in " +
                     autodeploy_state_path(settings_.state_dir));
        save_last("completed", target_path_ + " holds the image");
    } else {
        log::job(LogLevel::Error, status,
                 "auto-deploy: the deployment succeeded but cannot be recorded: " + record_error);
    }
    if (!recorded_ && reboots(c.then)) {
        // Never reboot into a loop of deployments.
        phase_ = Phase::Done;
        message_ = "deployed, but not recorded (" + shorten(record_error) + "); not " +
                   (c.then == AfterDeploy::Reboot ? "rebooting" : "powering off") +
                   ", as the next boot would deploy again";
        return;
    }
    if (is_final(status.state)) {
        job_ended(status);
        return;
    }
    phase_ = Phase::Seeding;
}

void AutoDeployer::job_ended(const JobStatus& status) {
    const auto& c = settings_.config;
    const auto action = decide_post_action(c.then, true, recorded_);
    message_ = target_path_ + " holds " + short_hash(info_hash_);
    if (action == PostAction::None) {
        phase_ = Phase::Done;
        log::job(LogLevel::Notice, status, "auto-deploy: done");
        return;
    }
    run_post_action(action);
}

void AutoDeployer::run_post_action(PostAction action) {
    const bool reboot = action == PostAction::Reboot;
    const std::string unit = reboot ? "reboot.target" : "poweroff.target";
    phase_ = Phase::Done;
    log::notice(std::string("auto-deploy: ") + (reboot ? "rebooting" : "powering off"));
    try {
        // What `systemctl reboot` asks of systemd when it does not go
        // through logind; the reply comes once the job is queued.
        auto systemd =
            sdbus::createProxy(bus_, "org.freedesktop.systemd1", "/org/freedesktop/systemd1");
        sdbus::ObjectPath job;
        systemd->callMethod("StartUnit")
            .onInterface("org.freedesktop.systemd1.Manager")
            .withArguments(unit, std::string("replace-irreversibly"))
            .storeResultsTo(job);
        message_ += reboot ? "; rebooting" : "; powering off";
    } catch (const sdbus::Error& e) {
        message_ += std::string("; cannot ") + (reboot ? "reboot" : "power off") + ": " +
                    shorten(e.getName() + ": " + e.getMessage());
        log::error("auto-deploy: cannot start " + unit + ": " + e.getName() + ": " +
                   e.getMessage());
    }
}

void AutoDeployer::fail(const std::string& message) {
    phase_ = Phase::Failed;
    message_ = shorten(message);
    const bool would_reboot = reboots(settings_.config.then);
    const std::string line =
        "auto-deploy failed" + std::string(would_reboot ? " (not rebooting)" : "") + ": " + message;
    std::optional<JobStatus> st;
    if (job_)
        st = daemon_.engine().status(*job_);
    if (st)
        log::job(LogLevel::Error, *st, line);
    else
        log::error(line);
    save_last("failed", message);
}

void AutoDeployer::save_last(const std::string& state, const std::string& message) {
    if (settings_.state_dir.empty())
        return;
    state_.last_state = state;
    state_.last_message = message;
    state_.last = {info_hash_, target_path_.empty() ? settings_.config.target : target_path_,
                   settings_.config.torrent, settings_.boot_id, now_us()};
    try {
        save_autodeploy_state(settings_.state_dir, state_);
    } catch (const Error& e) {
        log::warning(std::string("auto-deploy: cannot save its state: ") + e.what());
    }
}

milliseconds AutoDeployer::next_timeout() const {
    switch (phase_) {
        case Phase::Fetching:
        case Phase::WaitingRetry:
            return fetch_ ? fetch_->next_timeout() : milliseconds(0);
        case Phase::WaitingTarget:
        case Phase::Running:
        case Phase::Seeding:
            return milliseconds(1000);
        case Phase::Off:
        case Phase::Skipped:
        case Phase::Done:
        case Phase::Failed:
            break;
    }
    return milliseconds(60'000);
}

std::string AutoDeployer::status_line(const std::string& jobs_line) const {
    const auto& c = settings_.config;
    switch (phase_) {
        case Phase::Off:
            return jobs_line;
        case Phase::Fetching:
            return "Auto-deploy: fetching " + shorten(c.torrent) +
                   (fetch_ && fetch_->attempts() > 1
                        ? " (attempt " + std::to_string(fetch_->attempts()) + ")"
                        : "");
        case Phase::WaitingRetry:
            return "Auto-deploy: " + message_;
        case Phase::WaitingTarget:
            return "Auto-deploy: waiting for " + c.target + " to appear";
        case Phase::Running:
            return "Auto-deploy: " + jobs_line;
        case Phase::Seeding:
            return "Auto-deploy done, " +
                   std::string(c.then == AfterDeploy::Reboot     ? "reboot"
                               : c.then == AfterDeploy::Poweroff ? "power off"
                                                                 : "idle") +
                   " after seeding: " + jobs_line;
        case Phase::Skipped:
            return "Auto-deploy skipped: " + message_ + "; " + jobs_line;
        case Phase::Done:
            return "Auto-deploy done: " + message_ + "; " + jobs_line;
        case Phase::Failed:
            return "Auto-deploy failed" + std::string(reboots(c.then) ? " (not rebooting)" : "") +
                   ": " + message_ + "; " + jobs_line;
    }
    return jobs_line;
}

}  // namespace ezio::daemon
