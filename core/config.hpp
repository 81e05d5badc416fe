// eziod's configuration file, /etc/ezio/eziod.conf (documented in
// eziod.conf(5)). INI syntax:
//
//   # comment            ; comment
//   [daemon]
//   listen_port = 6881           0..65535, 0 = any free port
//   listen_interface = 0.0.0.0   address libtorrent binds to
//   state_dir = /var/lib/ezio    resume data; empty = no persistence
//   log_level = info             debug | info | notice | warning | error
//   io_threads = 0               0 = number of cores
//   local_discovery = yes        yes|no|true|false|on|off|1|0
//   [autodeploy]
//   torrent = /srv/sda1.torrent  path or http(s):// / tftp:// URL
//   target = sda1                device to deploy onto
//   then = reboot                reboot | poweroff | seed | none
//   seed_time = 600              none | forever | seconds (for then = seed)
//
// Parsing is strict: an unknown section or key, a malformed line or a bad
// value is an error naming the file and line, so a typo never passes
// silently. A key given twice keeps the last value. Values may be wrapped in
// double quotes to keep leading or trailing blanks.
//
// Pure functions with no global state; safe on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine.hpp"
#include "error.hpp"

namespace ezio {

enum class LogLevel { Debug, Info, Notice, Warning, Error };
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view to_string(LogLevel level);

// What to do once an automatic deployment succeeded.
enum class AfterDeploy { None, Reboot, Poweroff, Seed };
std::optional<AfterDeploy> parse_after_deploy(std::string_view text);
std::string_view to_string(AfterDeploy then);

// Seeding time as users write it: "none" (0), "forever" (-1) or a decimal
// number of seconds. nullopt for anything else, including overflow.
std::optional<std::int64_t> parse_seed_time(std::string_view text);

struct AutoDeployConfig {
    std::string torrent;  // path or URL; empty = auto-deploy off
    std::string target;
    AfterDeploy then = AfterDeploy::None;
    std::int64_t seed_time = -1;  // seconds, -1 = forever; used with then = seed

    bool enabled() const { return !torrent.empty(); }
};

struct DaemonConfig {
    // listen_port, listen_interface, state_dir, io_threads, local_discovery.
    EngineConfig engine;
    LogLevel log_level = LogLevel::Info;
    AutoDeployConfig autodeploy;
};

inline constexpr std::string_view kDefaultConfigPath = "/etc/ezio/eziod.conf";
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// Parses configuration text on top of `base` (so defaults and earlier files
// carry over). `origin` names the text in error messages ("FILE:LINE: ...").
// Throws ezio::Error(Errc::InvalidArgs).
DaemonConfig parse_config(std::string_view text, const std::string& origin, DaemonConfig base = {});

// Reads and parses `path`. A missing file yields `base` unchanged when
// `missing_ok`; otherwise, and for any other read error, throws
// ezio::Error(Errc::InvalidArgs).
DaemonConfig load_config(const std::string& path, bool missing_ok, DaemonConfig base = {});

}  // namespace ezio
