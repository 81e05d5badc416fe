// ezioctl autodeploy enable TORRENT TARGET | disable | status
//
// Edits and shows the [autodeploy] section of eziod.conf directly, as root,
// without eziod. Why not through eziod over D-Bus: the setting is a file
// that eziod reads only when it starts (auto-deploy is a boot-time action,
// so there is nothing to tell a running eziod); editing it needs no daemon,
// so a machine can be set up before eziod ever ran, or offline in a chroot;
// and eziod keeps a read-only /etc (ProtectSystem=strict) instead of needing
// write access to its own configuration. The file's owner (root) decides who
// may change it, as for any file in /etc. `status` reads the file, the
// kernel command line and eziod's record in the state directory, all
// readable without root.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "atomic_file.hpp"
#include "autodeploy.hpp"
#include "cli_format.hpp"
#include "error.hpp"
#include "fetch.hpp"
#include "target_path.hpp"
#include "verbs.hpp"

namespace ezio::cli {
namespace {

struct AutoDeployArgs {
    std::string then;
    std::string seed_time;
    std::vector<std::string> peers;
    bool redeploy = false;
    std::string config{kDefaultConfigPath};
};

AutoDeployArgs& args() {
    static AutoDeployArgs a;
    return a;
}

[[noreturn]] void usage(const std::string& message) {
    throw Error(Errc::InvalidArgs, message +
                                       " (usage: ezioctl autodeploy enable TORRENT TARGET "
                                       "| disable | status)");
}

// The file's text, "" when it does not exist; refuses a file that does not
// parse (it would not be safe to edit, and eziod would not start with it).
std::string read_config_text(const std::string& path, DaemonConfig* parsed = nullptr) {
    std::string text;
    try {
        auto bytes = read_file(path, kMaxConfigBytes + 1);
        text.assign(bytes.begin(), bytes.end());
    } catch (const Error& e) {
        if (e.code() != Errc::NotFound)
            throw Error(Errc::Failed, e.what());
    }
    auto config = parse_config(text, path);
    if (parsed)
        *parsed = std::move(config);
    return text;
}

void write_config_text(const std::string& path, const std::string& text) {
    // Never write what eziod would refuse to start with.
    parse_config(text, path);
    const auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec)
            throw Error(Errc::IoError, "cannot create " + dir.string() + ": " + ec.message());
    }
    struct stat st {};
    const mode_t mode = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    try {
        write_file_atomic(path, text);
    } catch (const Error& e) {
        throw Error(e.code(), std::string(e.what()) + (::geteuid() != 0 ? " (run as root)" : ""));
    }
    if (::chmod(path.c_str(), mode) != 0)
        throw Error(Errc::IoError, "cannot chmod " + path + ": " + std::strerror(errno));
}

std::string state_dir_of(const DaemonConfig& config) {
    return config.engine.state_dir.empty() ? std::string(kDefaultStateDir)
                                           : config.engine.state_dir;
}

bool quiet(const Context& ctx) {
    return ctx.in.global.quiet || ctx.in.global.json;
}

int enable(Context& ctx) {
    auto& a = args();
    if (ctx.in.args.size() != 3)
        usage("enable needs TORRENT and TARGET");
    AutoDeployConfig ad;
    ad.torrent = ctx.in.args[1];
    ad.target = ctx.in.args[2];

    std::string info_hash;
    if (!is_fetch_url(ad.torrent)) {
        // eziod starts in / and must find it at boot: store an absolute path,
        // and check now that it is an image torrent.
        auto bytes = fetch(ad.torrent);  // also refuses other URL schemes
        info_hash = torrent_info_hash(bytes);
        ad.torrent = std::filesystem::absolute(ad.torrent).lexically_normal().string();
    }
    if (ad.target.empty())
        throw Error(Errc::InvalidTarget, "the target is empty");
    std::optional<std::string> resolved;
    std::string target_note;
    try {
        resolved = resolve_target_path(ad.target, TargetKind::Device);
    } catch (const Error& e) {
        // It may be a disk that is plugged in later: eziod waits for it.
        target_note = e.what();
    }
    if (!a.then.empty()) {
        auto then = parse_after_deploy(a.then);
        if (!then)
            throw Error(Errc::InvalidArgs,
                        "--then: '" + a.then + "' is not reboot, poweroff, seed or none");
        ad.then = *then;
    }
    if (!a.seed_time.empty()) {
        try {
            ad.seed_time = parse_seed_after(a.seed_time);
        } catch (const Error& e) {
            throw Error(Errc::InvalidArgs, std::string("--seed-time: ") + e.what());
        }
    }
    for (const auto& p : a.peers)
        ad.peers.push_back(parse_peer(p));
    ad.redeploy = a.redeploy;

    DaemonConfig current;
    const std::string text = read_config_text(a.config, &current);
    // Enabling means "deploy at the next start": forget that this image was
    // deployed before, or eziod would skip it.
    const std::string state_dir = state_dir_of(current);
    std::size_t forgotten = 0;
    AutoDeployState state;
    try {
        state = load_autodeploy_state(state_dir);
    } catch (const Error&) {
        // Damaged: eziod starts a new record anyway.
    }
    forgotten = forget_completed(state, "");
    if (forgotten > 0)
        save_autodeploy_state(state_dir, state);
    write_config_text(a.config, replace_autodeploy_section(text, format_autodeploy_section(ad)));

    if (ctx.in.global.json) {
        nlohmann::json out{{"ConfigFile", a.config},
                           {"Torrent", ad.torrent},
                           {"Target", ad.target},
                           {"Then", std::string(to_string(ad.then))},
                           {"SeedTime", seed_time_to_string(effective_seed_time(ad))},
                           {"InfoHash", info_hash}};
        std::printf("%s\n", out.dump(2).c_str());
    } else if (!quiet(ctx)) {
        std::printf("Auto-deploy enabled in %s: %s onto %s, then %s.\n", a.config.c_str(),
                    ad.torrent.c_str(), ad.target.c_str(), std::string(to_string(ad.then)).c_str());
        if (!info_hash.empty())
            std::printf("Image %s.\n", info_hash.c_str());
        if (!target_note.empty())
            std::printf("Note: %s; eziod waits for it to appear.\n", target_note.c_str());
        std::printf(
            "eziod deploys it when it starts: at the next boot (systemctl enable eziod), or "
            "now with 'systemctl restart eziod'.\n");
    }
    return 0;
}

int disable(Context& ctx) {
    auto& a = args();
    if (ctx.in.args.size() != 1)
        usage("disable takes no arguments");
    if (!a.then.empty() || !a.seed_time.empty() || !a.peers.empty() || a.redeploy)
        usage("--then, --seed-time, --peer and --redeploy go with enable");
    DaemonConfig current;
    const std::string text = read_config_text(a.config, &current);
    const bool was = current.autodeploy.enabled();
    if (was)
        write_config_text(a.config, replace_autodeploy_section(text, ""));
    if (!quiet(ctx)) {
        std::printf(was ? "Auto-deploy disabled in %s.\n" : "Auto-deploy was not enabled in %s.\n",
                    a.config.c_str());
        try {
            if (read_kernel_cmdline(std::string(kKernelCmdlinePath)).torrent)
                std::printf(
                    "Note: the kernel command line of this boot still names ezio.torrent=.\n");
        } catch (const Error&) {
        }
    }
    return 0;
}

nlohmann::json record_json(const AutoDeployRecord& r, const std::string& boot_id) {
    return {{"InfoHash", r.info_hash},
            {"Target", r.target},
            {"Torrent", r.torrent},
            {"Time", r.time},
            {"ThisBoot", !boot_id.empty() && r.boot_id == boot_id}};
}

int status(Context& ctx) {
    auto& a = args();
    if (ctx.in.args.size() != 1)
        usage("status takes no arguments");
    if (!a.then.empty() || !a.seed_time.empty() || !a.peers.empty() || a.redeploy)
        usage("--then, --seed-time, --peer and --redeploy go with enable");
    DaemonConfig file;
    read_config_text(a.config, &file);

    std::string error;
    AutoDeployOverrides cmdline;
    AutoDeployConfig effective = file.autodeploy;
    try {
        cmdline = read_kernel_cmdline(std::string(kKernelCmdlinePath));
        effective = apply_overrides(file.autodeploy, cmdline);
    } catch (const Error& e) {
        error = e.what();
    }
    std::string words;
    for (const auto& w : cmdline.words)
        words += (words.empty() ? "" : " ") + w;

    const std::string state_dir = state_dir_of(file);
    const std::string boot_id = read_boot_id();
    AutoDeployState state;
    std::string state_error;
    try {
        state = load_autodeploy_state(state_dir);
    } catch (const Error& e) {
        state_error = e.what();
    }

    std::string enabled_text;
    if (!error.empty())
        enabled_text = "no, the kernel command line is invalid: " + error;
    else if (effective.enabled())
        enabled_text = file.autodeploy.enabled() ? "yes" : "yes, by the kernel command line";
    else if (cmdline.enabled && !*cmdline.enabled)
        enabled_text = "no, off for this boot (kernel command line)";
    else
        enabled_text = "no";

    if (ctx.in.global.json) {
        nlohmann::json out{{"ConfigFile", a.config},
                           {"Enabled", error.empty() && effective.enabled()},
                           {"KernelCommandLine", cmdline.words},
                           {"StateFile", autodeploy_state_path(state_dir)}};
        if (!error.empty())
            out["Error"] = error;
        if (effective.enabled()) {
            out["Torrent"] = effective.torrent;
            out["Target"] = effective.target;
            out["Then"] = std::string(to_string(effective.then));
            out["SeedTime"] = seed_time_to_string(effective_seed_time(effective));
            out["Peers"] = effective.peers;
            out["Redeploy"] = effective.redeploy;
        }
        if (!state_error.empty())
            out["StateError"] = state_error;
        if (!state.last_state.empty()) {
            auto last = record_json(state.last, boot_id);
            last["State"] = state.last_state;
            last["Message"] = state.last_message;
            out["LastRun"] = last;
        }
        nlohmann::json deployed = nlohmann::json::array();
        for (const auto& r : state.completed)
            deployed.push_back(record_json(r, boot_id));
        out["Deployed"] = deployed;
        std::printf("%s\n",
                    out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        return 0;
    }

    auto row = [](const char* label, const std::string& value) {
        std::printf("%-13s %s\n", label, value.c_str());
    };
    row("Config file:", a.config);
    row("Auto-deploy:", enabled_text);
    if (effective.enabled()) {
        row("Torrent:", effective.torrent);
        row("Target:", effective.target);
        row("Then:", std::string(to_string(effective.then)));
        row("Seed time:", seed_time_to_string(effective_seed_time(effective)));
        std::string peers;
        for (const auto& p : effective.peers)
            peers += (peers.empty() ? "" : " ") + p;
        row("Peers:", peers.empty() ? "-" : peers);
        row("Redeploy:", effective.redeploy ? "yes, at every boot" : "no, once per image");
    }
    if (!words.empty())
        row("Kernel:", words);
    auto when = [&](const AutoDeployRecord& r) {
        return format_timestamp(r.time) +
               (!boot_id.empty() && r.boot_id == boot_id ? " (this boot)" : "");
    };
    if (!state_error.empty())
        row("Record:", state_error);
    if (!state.last_state.empty())
        row("Last run:", state.last_state + " " + when(state.last) +
                             (state.last_message.empty() ? "" : ": " + state.last_message));
    if (state.completed.empty())
        row("Deployed:", "nothing recorded in " + autodeploy_state_path(state_dir));
    for (auto it = state.completed.rbegin(); it != state.completed.rend(); ++it)
        row(it == state.completed.rbegin() ? "Deployed:" : "",
            it->info_hash + " onto " + it->target + " " + when(*it));
    return 0;
}

}  // namespace

void add_autodeploy_options(CLI::App& app, Invocation&) {
    auto& a = args();
    app.add_option("--then", a.then, "enable: what to do once the image is deployed (default none)")
        ->type_name("reboot|poweroff|seed|none");
    app.add_option("--seed-time", a.seed_time,
                   "enable: seed the image this long after deploying, before --then "
                   "(default forever with --then seed, else none)")
        ->type_name("none|forever|SECONDS");
    app.add_option("--peer", a.peers, "enable: also connect to this peer; repeatable")
        ->type_name("HOST:PORT")
        ->allow_extra_args(false);
    app.add_flag("--redeploy", a.redeploy,
                 "enable: deploy at every boot, even an image that was deployed before");
    app.add_option("--config", a.config,
                   "The eziod configuration file (default " + std::string(kDefaultConfigPath) + ")")
        ->type_name("FILE");
}

int run_autodeploy(Context& ctx) {
    const std::string& sub = ctx.in.args.at(0);
    if (sub == "enable")
        return enable(ctx);
    if (sub == "disable")
        return disable(ctx);
    if (sub == "status")
        return status(ctx);
    usage("unknown action '" + sub + "'");
}

}  // namespace ezio::cli
