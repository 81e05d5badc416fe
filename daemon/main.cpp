// eziod: owns org.ezio.Ezio1 and runs deployment jobs.
//
// One thread runs everything ezio-side: a poll() loop over the D-Bus
// connection, the Engine's event fd, a signalfd for SIGTERM/SIGINT and the
// disk monitor's fd (DiskManager: disks on the bus, hot-plug duplicator).
// libtorrent and the storage run their own threads and wake us through the
// Engine's event fd. sd_notify: READY=1 once the bus name is owned, STATUS=
// whenever the summary changes, WATCHDOG=1 from the loop, STOPPING=1 on the
// way out.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <sdbus-c++/sdbus-c++.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "autodeployer.hpp"
#include "config.hpp"
#include "daemon.hpp"
#include "disk_manager.hpp"
#include "log.hpp"

namespace {

using namespace ezio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Arguments {
    std::string config_path{kDefaultConfigPath};
    bool config_given = false;
    std::optional<std::string> state_dir;
    std::optional<int> listen_port;
    std::optional<std::string> listen_interface;
    std::optional<std::string> log_level;
    std::string kernel_cmdline{kKernelCmdlinePath};
    bool session = false;
};

int to_poll_timeout(milliseconds ms) {
    return static_cast<int>(std::clamp<milliseconds::rep>(ms.count(), 0, 60'000));
}

// Blocks SIGTERM and SIGINT (before any thread exists, so libtorrent's
// threads inherit the mask) and returns a signalfd for them.
int make_signal_fd() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0)
        return -1;
    ::signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

void notify(const std::string& state) {
    sd_notify(0, state.c_str());
}

// After construction the session may still be binding its listen socket;
// ListenPort must be right once we are visible, so give it a moment.
void wait_until_listening(Engine& engine, daemon::Daemon& d) {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (engine.listen_port() <= 0 && Clock::now() < deadline) {
        pollfd pfd{engine.event_fd(), POLLIN, 0};
        ::poll(&pfd, 1, to_poll_timeout(std::min(engine.next_timeout(), milliseconds(100))));
        engine.process();
        d.flush();
    }
    if (engine.listen_port() <= 0)
        log::warning("BitTorrent session is not listening yet");
}

class MainLoop {
    static constexpr int kMaxMessagesPerRound = 64;

  public:
    MainLoop(sdbus::IConnection& bus, daemon::Daemon& d, int signal_fd,
             daemon::AutoDeployer* autodeploy, daemon::DiskManager& disks)
        : bus_(bus), daemon_(d), signal_fd_(signal_fd), autodeploy_(autodeploy), disks_(disks) {
        std::uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
            watchdog_interval_ =
                std::chrono::duration_cast<milliseconds>(std::chrono::microseconds(usec / 2));
    }

    // Returns when a termination signal arrived. Throws sdbus::Error when
    // the bus connection fails.
    void run() {
        auto& engine = daemon_.engine();
        auto engine_deadline = Clock::now();
        auto watchdog_deadline = Clock::now();
        for (;;) {
            // Bounded, so a flood of calls cannot starve the engine; when the
            // bound is hit, poll() below does not sleep.
            int handled = 0;
            while (handled < kMaxMessagesPerRound && bus_.processPendingRequest())
                ++handled;
            const bool more_bus_work = handled == kMaxMessagesPerRound;
            daemon_.flush();
            if (autodeploy_) {
                autodeploy_->tick();
                daemon_.flush();
            }
            // Disk events (its fd is polled below) and the duplicator.
            disks_.tick();
            daemon_.flush();
            auto now = Clock::now();
            if (watchdog_interval_ && now >= watchdog_deadline) {
                notify("WATCHDOG=1");
                watchdog_deadline = now + *watchdog_interval_;
            }
            update_status();

            auto pd = bus_.getEventLoopPollData();
            milliseconds timeout = engine.next_timeout();
            engine_deadline = now + timeout;
            if (auto bus_timeout = pd.getRelativeTimeout())
                timeout = std::min(timeout, std::chrono::ceil<milliseconds>(*bus_timeout));
            if (watchdog_interval_)
                timeout =
                    std::min(timeout, std::chrono::ceil<milliseconds>(watchdog_deadline - now));
            if (autodeploy_)
                timeout = std::min(timeout, autodeploy_->next_timeout());
            timeout = std::min(timeout, disks_.next_timeout());
            if (more_bus_work)
                timeout = milliseconds(0);

            pollfd fds[4] = {{pd.fd, pd.events, 0},
                             {engine.event_fd(), POLLIN, 0},
                             {signal_fd_, POLLIN, 0},
                             {disks_.fd(), POLLIN, 0}};
            int n = ::poll(fds, 4, to_poll_timeout(timeout));
            if (n < 0 && errno != EINTR)
                throw std::runtime_error(std::strerror(errno));
            if (n > 0 && fds[2].revents) {
                signalfd_siginfo info{};
                if (::read(signal_fd_, &info, sizeof info) == sizeof info) {
                    log::notice(std::string("received ") + strsignal(info.ssi_signo) +
                                ", shutting down");
                    return;
                }
            }
            if ((n > 0 && fds[1].revents) || Clock::now() >= engine_deadline) {
                engine.process();
                daemon_.flush();
            }
        }
    }

  private:
    void update_status() {
        auto line = daemon_.status_line();
        if (autodeploy_)
            line = autodeploy_->status_line(line);
        line = disks_.status_line(line);
        if (line == status_)
            return;
        status_ = line;
        notify("STATUS=" + line);
    }

    sdbus::IConnection& bus_;
    daemon::Daemon& daemon_;
    int signal_fd_;
    daemon::AutoDeployer* autodeploy_;  // null: nothing to do at start
    daemon::DiskManager& disks_;
    std::optional<milliseconds> watchdog_interval_;
    std::string status_;
};

// Auto-deploy as eziod.conf and the kernel command line ask; null when
// neither asks for it. A bad kernel command line is not fatal: eziod runs,
// and the STATUS= line and the journal say why nothing is deployed.
std::unique_ptr<daemon::AutoDeployer> make_autodeployer(sdbus::IConnection& bus, daemon::Daemon& d,
                                                        const DaemonConfig& config,
                                                        const std::string& cmdline_path) {
    daemon::AutoDeployer::Settings settings;
    settings.state_dir = config.engine.state_dir;
    settings.boot_id = read_boot_id();
    try {
        auto overrides = read_kernel_cmdline(cmdline_path);
        if (!overrides.empty())
            log::info("auto-deploy: kernel command line says " + [&] {
                std::string words;
                for (const auto& w : overrides.words)
                    words += (words.empty() ? "" : " ") + w;
                return words;
            }());
        settings.config = apply_overrides(config.autodeploy, overrides);
    } catch (const Error& e) {
        settings.error = e.what();
    }
    if (!settings.config.enabled() && settings.error.empty())
        return nullptr;
    return std::make_unique<daemon::AutoDeployer>(bus, d, std::move(settings));
}

int run(const Arguments& args) {
    DaemonConfig config;
    try {
        config = load_config(args.config_path, !args.config_given);
    } catch (const Error& e) {
        log::init(LogLevel::Info);
        log::error(e.what());
        return 1;
    }
    if (args.state_dir)
        config.engine.state_dir = *args.state_dir;
    // Under systemd, StateDirectory= names the state directory (the first
    // of a list) unless the command line or the file did.
    if (const char* dirs = std::getenv("STATE_DIRECTORY");
        dirs && *dirs && config.engine.state_dir.empty())
        config.engine.state_dir = std::string(dirs).substr(0, std::string(dirs).find(':'));
    if (args.listen_port)
        config.engine.listen_port = *args.listen_port;
    if (args.listen_interface)
        config.engine.listen_interface = *args.listen_interface;
    if (args.log_level)
        config.log_level = *parse_log_level(*args.log_level);
    log::init(config.log_level);

    int signal_fd = make_signal_fd();
    if (signal_fd < 0) {
        log::error(std::string("cannot set up signal handling: ") + std::strerror(errno));
        return 1;
    }

    std::unique_ptr<sdbus::IConnection> bus;
    try {
        bus =
            args.session ? sdbus::createSessionBusConnection() : sdbus::createSystemBusConnection();
    } catch (const sdbus::Error& e) {
        log::error("cannot connect to the " + std::string(args.session ? "session" : "system") +
                   " bus: " + e.getMessage());
        return 1;
    }

    std::unique_ptr<daemon::Daemon> d;
    int status = 0;
    try {
        d = std::make_unique<daemon::Daemon>(*bus, config.engine);
        // Unfinished jobs of the previous run go on the bus (under their old
        // paths) before anyone can see us.
        auto restored = d->engine().restore();
        d->flush();
        if (!restored.empty())
            log::notice("restored " + std::to_string(restored.size()) + " job(s) from " +
                        config.engine.state_dir);
        wait_until_listening(d->engine(), *d);
        // Disks present now go on the bus before anyone can see us.
        daemon::DiskManager disks(*bus, *d, config.duplicator);
        try {
            bus->requestName(daemon::kBusName);
        } catch (const sdbus::Error& e) {
            throw std::runtime_error(std::string("cannot own ") + daemon::kBusName + " (" +
                                     e.getName() +
                                     "): is another eziod running, or is the bus "
                                     "policy (org.ezio.Ezio1.conf) missing?");
        }
        log::notice("eziod " EZIO_VERSION " ready on the " +
                    std::string(args.session ? "session" : "system") + " bus, BitTorrent port " +
                    std::to_string(d->engine().listen_port()));
        notify("READY=1\nSTATUS=" + d->status_line());
        auto autodeploy = make_autodeployer(*bus, *d, config, args.kernel_cmdline);
        MainLoop(*bus, *d, signal_fd, autodeploy.get(), disks).run();
    } catch (const sdbus::Error& e) {
        log::error("D-Bus: " + e.getName() + ": " + e.getMessage());
        status = 1;
    } catch (const std::exception& e) {
        log::error(e.what());
        status = 1;
    }

    notify("STOPPING=1\nSTATUS=Shutting down");
    if (d) {
        try {
            d->engine().shutdown();
        } catch (const std::exception& e) {
            log::error(std::string("shutdown: ") + e.what());
            status = 1;
        }
    }
    d.reset();
    bus.reset();
    ::close(signal_fd);
    log::info("stopped");
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    Arguments args;
    bool version = false;
    CLI::App app{
        "eziod - deploy disk images to many machines at once over BitTorrent.\n"
        "Owns org.ezio.Ezio1 on the system bus; control it with ezioctl(1).",
        "eziod"};
    app.add_option("-c,--config", args.config_path,
                   "Configuration file (default " + std::string(kDefaultConfigPath) +
                       "; a missing default file is fine)")
        ->each([&](const std::string&) { args.config_given = true; });
    app.add_option("--state-dir", args.state_dir, "Directory for resume data");
    app.add_option("--listen-port", args.listen_port, "BitTorrent listen port; 0 = any free port")
        ->check(CLI::Range(0, 65535));
    app.add_option("--listen-interface", args.listen_interface,
                   "Address the BitTorrent session binds to");
    app.add_option("--log-level", args.log_level, "debug, info, notice, warning or error")
        ->check(CLI::IsMember({"debug", "info", "notice", "warning", "error"}));
    app.add_option("--kernel-cmdline", args.kernel_cmdline,
                   "Read the ezio.* auto-deploy parameters from this file instead of " +
                       std::string(kKernelCmdlinePath) + "; empty: ignore them");
    app.add_flag("--session", args.session, "Use the session bus instead of the system bus");
    app.add_flag("--version", version, "Print the version and exit");
    CLI11_PARSE(app, argc, argv);

    if (version) {
        std::printf("eziod %s\n", EZIO_VERSION);
        return 0;
    }
    return run(args);
}
