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
//   direct_io = auto             auto | yes | no: write block devices with
//                                O_DIRECT (auto: unless rotational)
//   local_discovery = yes        yes|no|true|false|on|off|1|0
//   paced_seeding = yes          seeds show ezio receivers a few pieces at a
//                                time, so the seed sends each piece once
//   [autodeploy]
//   torrent = /srv/sda1.torrent  path or http(s):// / tftp:// URL
//   target = sda1                device to deploy onto
//   then = reboot                reboot | poweroff | seed | none
//   seed_time = 600              none | forever | seconds of seeding after the
//                                deployment, before `then` (default: forever
//                                for then = seed, none otherwise)
//   peers = 10.0.0.1:6881 ...    extra peers, host:port, blank or comma separated
//   redeploy = no                yes: deploy again at every boot, even an
//                                image that was already deployed (see
//                                core/autodeploy.hpp)
//   [duplicator]                 hot-plug duplicator: every new matching disk
//                                gets the image (daemon/duplicator.hpp)
//   torrent = /srv/disk.torrent  path or http(s):// / tftp:// URL
//   match_property = KEY=GLOB    udev property that must match (fnmatch glob)
//   match_by_path = GLOB         /dev/disk/by-path/ slot that must match
//   min_size = 8G                size bounds (bytes, or K/M/G/T suffixes,
//   max_size = 2T                powers of 1024)
//   partitions = no              yes: partitions may match, not just disks
//   verify = no                  re-read and check every piece when written
//   peers = 10.0.0.1:6881 ...    extra peers, as in [autodeploy]
//                                At least one of match_property and
//                                match_by_path is required.
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
#include <vector>

#include "disk_match.hpp"
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
// The inverse: 0 -> "none", -1 -> "forever", N -> "N".
std::string seed_time_to_string(std::int64_t seconds);

// yes|no|true|false|on|off|1|0; nullopt for anything else.
std::optional<bool> parse_yes_no(std::string_view text);

// "host:port host:port,[v6]:port": blank- or comma-separated peers, each
// checked like ezioctl's --peer. nullopt when any entry is malformed.
std::optional<std::vector<std::string>> parse_peer_list(std::string_view text);

struct AutoDeployConfig {
    std::string torrent;  // path or URL; empty = auto-deploy off
    std::string target;
    AfterDeploy then = AfterDeploy::None;
    // Seconds to seed after the deployment, -1 = forever; unset = the
    // default for `then` (see effective_seed_time() in autodeploy.hpp).
    std::optional<std::int64_t> seed_time;
    std::vector<std::string> peers;  // extra peers for the deployment
    bool redeploy = false;           // deploy even when already done once

    bool enabled() const { return !torrent.empty(); }
};

struct DuplicatorConfig {
    std::string torrent;  // path or URL; empty = duplicator off
    DuplicatorMatch match;
    bool verify = false;
    std::vector<std::string> peers;  // extra peers for every deployment

    bool enabled() const { return !torrent.empty(); }
};

struct DaemonConfig {
    // listen_port, listen_interface, state_dir, io_threads, direct_io,
    // local_discovery, paced_seeding.
    EngineConfig engine;
    LogLevel log_level = LogLevel::Info;
    AutoDeployConfig autodeploy;
    DuplicatorConfig duplicator;
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
