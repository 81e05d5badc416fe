// Auto-deploy on boot, the part that knows nothing of D-Bus or systemd
// (eziod's daemon/autodeploy.* drives it; ezioctl's `autodeploy` verb edits
// and shows it; eziod.conf(5) documents it for users):
//
//  - The kernel command line: ezio.torrent=, ezio.target=, ezio.then=,
//    ezio.seed_time=, ezio.peers=, ezio.redeploy=, ezio.autodeploy=, read
//    from /proc/cmdline, override the [autodeploy] section of eziod.conf key
//    by key, so a PXE-booted machine deploys without a config file, and
//    `ezio.autodeploy=0` switches a configured auto-deploy off for one boot.
//  - The record of finished deployments (STATE_DIR/autodeploy.json): an
//    image (info-hash) deployed onto a target is not deployed again at the
//    next boot, so `then = reboot` cannot loop. With `redeploy = yes` it is
//    deployed again at every boot, but still once per boot (a restart of
//    eziod within one boot never deploys twice).
//  - What to do afterwards: reboot or power off only after a deployment that
//    succeeded *and* was recorded; a failure never leads to a reboot.
//  - Rewriting the [autodeploy] section of eziod.conf, keeping the rest of
//    the file as it was.
//
// Pure functions and plain data, no global state; safe on any thread. Errors
// are ezio::Error with a message naming the file or the parameter.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace ezio {

inline constexpr std::string_view kKernelCmdlinePath = "/proc/cmdline";
inline constexpr std::string_view kBootIdPath = "/proc/sys/kernel/random/boot_id";
inline constexpr std::string_view kAutoDeployStateFile = "autodeploy.json";
// Where the packaged eziod.service keeps its state (StateDirectory=ezio),
// used when eziod.conf names no state_dir.
inline constexpr std::string_view kDefaultStateDir = "/var/lib/ezio";

// --- the kernel command line -------------------------------------------------------

// What the kernel command line says; unset keys leave eziod.conf's value.
struct AutoDeployOverrides {
    std::optional<std::string> torrent;
    std::optional<std::string> target;
    std::optional<AfterDeploy> then;
    std::optional<std::int64_t> seed_time;
    std::optional<std::vector<std::string>> peers;
    std::optional<bool> redeploy;
    // ezio.autodeploy=no: no auto-deploy on this boot, whatever else is set.
    std::optional<bool> enabled;
    // The ezio.* words as written, for messages ("ezio.then=poweroff").
    std::vector<std::string> words;

    bool empty() const { return words.empty(); }
};

// Splits a command line like the kernel does: blanks separate words, double
// quotes group blanks into a word and are removed.
std::vector<std::string> split_kernel_cmdline(std::string_view text);

// Picks the ezio.* parameters out of a whole command line; everything else
// is ignored. In keys, '-' and '_' are the same (ezio.seed-time=). Throws
// Error(InvalidArgs, "kernel command line: ezio.then=explode: expected ...")
// for a bad value or an unknown ezio.* key.
AutoDeployOverrides parse_kernel_cmdline(std::string_view text);

// Reads and parses `path` (normally /proc/cmdline). An empty path means no
// overrides. Throws Error(IoError) when the file cannot be read, and what
// parse_kernel_cmdline() throws.
AutoDeployOverrides read_kernel_cmdline(const std::string& path);

// `config` with the overrides applied. Throws Error(InvalidArgs) when the
// result names a torrent but no target or the other way round, or a torrent
// that is neither an absolute path nor a URL fetch() takes.
AutoDeployConfig apply_overrides(AutoDeployConfig config, const AutoDeployOverrides& overrides);

// Seconds to seed after the deployment, -1 = forever: seed_time when set,
// else forever for then = seed and none for the others.
std::int64_t effective_seed_time(const AutoDeployConfig& config);

// --- the record of deployments -------------------------------------------------------

struct AutoDeployRecord {
    std::string info_hash;   // hex, as JobStatus::info_hash
    std::string target;      // the device path that was written
    std::string torrent;     // where the torrent came from
    std::string boot_id;     // the boot it happened in ("" when unknown)
    std::uint64_t time = 0;  // µs since the epoch
};

struct AutoDeployState {
    static constexpr std::size_t kMaxCompleted = 16;

    // Deployments that succeeded, oldest first; one per (info_hash, target).
    std::vector<AutoDeployRecord> completed;

    // The latest attempt, for `ezioctl autodeploy status`:
    // state is "running", "completed", "failed" or "skipped".
    std::string last_state;
    std::string last_message;
    AutoDeployRecord last;
};

// STATE_DIR/autodeploy.json.
std::string autodeploy_state_path(const std::string& state_dir);

// Reads the record. A missing file is an empty record. Throws
// Error(IoError) when the file cannot be read and Error(Failed) when it does
// not parse (callers decide whether to start afresh).
AutoDeployState load_autodeploy_state(const std::string& state_dir);
// Writes it atomically (see atomic_file.hpp), mode 0644; creates STATE_DIR
// if needed. Throws Error(IoError).
void save_autodeploy_state(const std::string& state_dir, const AutoDeployState& state);

// The completed record that makes a new deployment of `info_hash` onto
// `target` unnecessary, or null. Without redeploy any record of the pair
// counts; with redeploy only one from this very boot (`boot_id`, never an
// empty one) does.
const AutoDeployRecord* find_completed(const AutoDeployState& state, std::string_view info_hash,
                                       std::string_view target, std::string_view boot_id,
                                       bool redeploy);
// Adds `record`, replacing an older one of the same (info_hash, target) and
// dropping the oldest beyond kMaxCompleted.
void add_completed(AutoDeployState& state, AutoDeployRecord record);
// Forgets every completed deployment onto `target`; all when empty.
// Returns how many were dropped.
std::size_t forget_completed(AutoDeployState& state, std::string_view target);

// The current boot's id (one line of 32 hex digits with dashes), "" when it
// cannot be read.
std::string read_boot_id(const std::string& path = std::string(kBootIdPath));

// --- after the deployment ---------------------------------------------------------------

enum class PostAction { None, Reboot, Poweroff };
std::string_view to_string(PostAction action);

// What to do once the auto-deploy job ended. Reboot/Poweroff only when the
// deployment succeeded and its record was saved (else the next boot would
// deploy again, and again); anything else, and then = seed | none, is None.
PostAction decide_post_action(AfterDeploy then, bool deployed, bool recorded);

// --- eziod.conf editing ----------------------------------------------------------------

// "[autodeploy]\ntorrent = ...\n..." for `config` (keys with default
// values left out). Values with blanks at either end are quoted.
std::string format_autodeploy_section(const AutoDeployConfig& config);

// `text` with every [autodeploy] section (its header up to the next
// section) replaced by `section` at the place of the first one, or appended
// when there was none; `section` empty removes them. Every other line stays
// byte for byte.
std::string replace_autodeploy_section(std::string_view text, std::string_view section);

// --- torrents -----------------------------------------------------------------------------

// The info-hash eziod reports for an image torrent: v1 in hex if present,
// else v2. Throws Error(InvalidTorrent) unless the bytes are an ezio image
// torrent (see layout.hpp).
std::string torrent_info_hash(std::span<const char> torrent);

}  // namespace ezio
