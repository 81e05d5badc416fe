#include "autodeploy.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include <libtorrent/torrent_info.hpp>
#include <nlohmann/json.hpp>

#include "atomic_file.hpp"
#include "error.hpp"
#include "fetch.hpp"
#include "layout.hpp"

namespace ezio {
namespace {

constexpr std::string_view kBlanks = " \t\r\n";
constexpr std::string_view kPrefix = "ezio.";

std::string_view trim(std::string_view s) {
    auto first = s.find_first_not_of(kBlanks);
    if (first == std::string_view::npos)
        return {};
    auto last = s.find_last_not_of(kBlanks);
    return s.substr(first, last - first + 1);
}

[[noreturn]] void bad_param(const std::string& word, std::string_view expected) {
    throw Error(Errc::InvalidArgs,
                "kernel command line: " + word + ": expected " + std::string(expected));
}

// The section name of a "[name]" line, or nullopt for any other line.
std::optional<std::string_view> section_name(std::string_view line) {
    auto text = trim(line);
    if (text.size() < 2 || text.front() != '[' || text.back() != ']')
        return std::nullopt;
    return trim(text.substr(1, text.size() - 2));
}

std::string config_value(std::string_view value) {
    if (!value.empty() && (kBlanks.find(value.front()) != std::string_view::npos ||
                           kBlanks.find(value.back()) != std::string_view::npos))
        return "\"" + std::string(value) + "\"";
    return std::string(value);
}

nlohmann::json to_json(const AutoDeployRecord& r) {
    return {{"info_hash", r.info_hash},
            {"target", r.target},
            {"torrent", r.torrent},
            {"boot_id", r.boot_id},
            {"time", r.time}};
}

AutoDeployRecord record_from_json(const nlohmann::json& j) {
    AutoDeployRecord r;
    r.info_hash = j.value("info_hash", "");
    r.target = j.value("target", "");
    r.torrent = j.value("torrent", "");
    r.boot_id = j.value("boot_id", "");
    r.time = j.value("time", std::uint64_t{0});
    return r;
}

}  // namespace

// --- the kernel command line -------------------------------------------------------

std::vector<std::string> split_kernel_cmdline(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    bool quoted = false;
    for (char c : text) {
        if (c == '"') {
            quoted = !quoted;
            in_word = true;
            continue;
        }
        if (!quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            if (in_word)
                words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        word += c;
        in_word = true;
    }
    if (in_word)
        words.push_back(std::move(word));
    return words;
}

AutoDeployOverrides parse_kernel_cmdline(std::string_view text) {
    AutoDeployOverrides o;
    for (const auto& word : split_kernel_cmdline(text)) {
        if (!std::string_view(word).starts_with(kPrefix))
            continue;
        auto eq = word.find('=');
        std::string key = word.substr(
            kPrefix.size(), eq == std::string::npos ? std::string::npos : eq - kPrefix.size());
        std::replace(key.begin(), key.end(), '-', '_');
        if (eq == std::string::npos) {
            // A bare boolean switch, as the kernel allows ("ezio.redeploy").
            if (key == "redeploy" || key == "autodeploy") {
                (key == "redeploy" ? o.redeploy : o.enabled) = true;
                o.words.push_back(word);
                continue;
            }
            bad_param(word, "ezio.KEY=VALUE");
        }
        std::string_view value = std::string_view(word).substr(eq + 1);
        if (key == "torrent") {
            if (!is_fetch_url(value) && (value.empty() || value.front() != '/'))
                bad_param(word, "an absolute path or an http://, https:// or tftp:// URL");
            o.torrent = value;
        } else if (key == "target") {
            if (value.empty())
                bad_param(word, "a device such as sda1 or /dev/disk/by-path/...");
            o.target = value;
        } else if (key == "then") {
            auto then = parse_after_deploy(value);
            if (!then)
                bad_param(word, "reboot, poweroff, seed or none");
            o.then = then;
        } else if (key == "seed_time") {
            auto t = parse_seed_time(value);
            if (!t)
                bad_param(word, "none, forever or a number of seconds");
            o.seed_time = t;
        } else if (key == "peers") {
            auto peers = parse_peer_list(value);
            if (!peers)
                bad_param(word, "host:port entries separated by commas");
            o.peers = std::move(peers);
        } else if (key == "redeploy" || key == "autodeploy") {
            auto b = parse_yes_no(value);
            if (!b)
                bad_param(word, "yes or no (1 or 0)");
            (key == "redeploy" ? o.redeploy : o.enabled) = b;
        } else {
            throw Error(Errc::InvalidArgs,
                        "kernel command line: unknown parameter " + word.substr(0, eq) +
                            " (known: ezio.torrent, ezio.target, ezio.then, ezio.seed_time, "
                            "ezio.peers, ezio.redeploy, ezio.autodeploy)");
        }
        o.words.push_back(word);
    }
    return o;
}

AutoDeployOverrides read_kernel_cmdline(const std::string& path) {
    if (path.empty())
        return {};
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(Errc::IoError, "cannot read " + path + ": " + std::strerror(errno));
    std::string text(64 * 1024, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad())
        throw Error(Errc::IoError, "cannot read " + path);
    text.resize(static_cast<std::size_t>(in.gcount()));
    return parse_kernel_cmdline(text);
}

AutoDeployConfig apply_overrides(AutoDeployConfig config, const AutoDeployOverrides& o) {
    if (o.torrent)
        config.torrent = *o.torrent;
    if (o.target)
        config.target = *o.target;
    if (o.then)
        config.then = *o.then;
    if (o.seed_time)
        config.seed_time = *o.seed_time;
    if (o.peers)
        config.peers = *o.peers;
    if (o.redeploy)
        config.redeploy = *o.redeploy;
    if (o.enabled && !*o.enabled) {
        config.torrent.clear();
        config.target.clear();
        return config;
    }
    // eziod runs in /: a relative path would mean nothing there.
    if (!config.torrent.empty() && !is_fetch_url(config.torrent) && config.torrent.front() != '/')
        throw Error(Errc::InvalidArgs, "auto-deploy torrent '" + config.torrent +
                                           "' is neither an absolute path nor an http://, "
                                           "https:// or tftp:// URL");
    if (config.torrent.empty() != config.target.empty())
        throw Error(Errc::InvalidArgs,
                    config.torrent.empty()
                        ? "auto-deploy has a target (" + config.target +
                              ") but no torrent: set ezio.torrent= or torrent in [autodeploy]"
                        : "auto-deploy has a torrent (" + config.torrent +
                              ") but no target: set ezio.target= or target in [autodeploy]");
    return config;
}

std::int64_t effective_seed_time(const AutoDeployConfig& config) {
    if (config.seed_time)
        return *config.seed_time;
    return config.then == AfterDeploy::Seed ? -1 : 0;
}

// --- the record of deployments -------------------------------------------------------

std::string autodeploy_state_path(const std::string& state_dir) {
    return state_dir + "/" + std::string(kAutoDeployStateFile);
}

AutoDeployState load_autodeploy_state(const std::string& state_dir) {
    const auto path = autodeploy_state_path(state_dir);
    std::vector<char> data;
    try {
        data = read_file(path, 1 << 20);
    } catch (const Error& e) {
        if (e.code() == Errc::NotFound)
            return {};
        throw;
    }
    AutoDeployState state;
    try {
        auto j = nlohmann::json::parse(data.begin(), data.end());
        if (!j.is_object())
            throw Error(Errc::Failed, "not a JSON object");
        if (auto it = j.find("completed"); it != j.end())
            for (const auto& r : *it)
                state.completed.push_back(record_from_json(r));
        if (auto it = j.find("last"); it != j.end() && it->is_object()) {
            state.last = record_from_json(*it);
            state.last_state = it->value("state", "");
            state.last_message = it->value("message", "");
        }
    } catch (const nlohmann::json::exception& e) {
        throw Error(Errc::Failed, path + " is damaged: " + e.what());
    } catch (const Error& e) {
        throw Error(Errc::Failed, path + " is damaged: " + e.what());
    }
    return state;
}

void save_autodeploy_state(const std::string& state_dir, const AutoDeployState& state) {
    nlohmann::json completed = nlohmann::json::array();
    for (const auto& r : state.completed)
        completed.push_back(to_json(r));
    nlohmann::json j = {{"version", 1}, {"completed", completed}};
    if (!state.last_state.empty()) {
        auto last = to_json(state.last);
        last["state"] = state.last_state;
        last["message"] = state.last_message;
        j["last"] = last;
    }
    // Replace invalid UTF-8 (a message quoting a strange path) instead of
    // failing to record a deployment.
    const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    make_directories(state_dir);
    const auto path = autodeploy_state_path(state_dir);
    write_file_atomic(path, text);
    // Readable by everybody: `ezioctl autodeploy status` needs no root.
    if (::chmod(path.c_str(), 0644) != 0)
        throw Error(Errc::IoError, "cannot chmod " + path + ": " + std::strerror(errno));
}

const AutoDeployRecord* find_completed(const AutoDeployState& state, std::string_view info_hash,
                                       std::string_view target, std::string_view boot_id,
                                       bool redeploy) {
    for (const auto& r : state.completed) {
        if (r.info_hash != info_hash || r.target != target)
            continue;
        if (redeploy && (boot_id.empty() || r.boot_id != boot_id))
            continue;
        return &r;
    }
    return nullptr;
}

void add_completed(AutoDeployState& state, AutoDeployRecord record) {
    auto& c = state.completed;
    c.erase(std::remove_if(c.begin(), c.end(),
                           [&](const AutoDeployRecord& r) {
                               return r.info_hash == record.info_hash && r.target == record.target;
                           }),
            c.end());
    c.push_back(std::move(record));
    if (c.size() > AutoDeployState::kMaxCompleted)
        c.erase(c.begin(), c.end() - AutoDeployState::kMaxCompleted);
}

std::size_t forget_completed(AutoDeployState& state, std::string_view target) {
    auto& c = state.completed;
    const auto before = c.size();
    c.erase(std::remove_if(
                c.begin(), c.end(),
                [&](const AutoDeployRecord& r) { return target.empty() || r.target == target; }),
            c.end());
    return before - c.size();
}

std::string read_boot_id(const std::string& path) {
    std::ifstream in(path);
    std::string id;
    if (!in || !std::getline(in, id))
        return {};
    return std::string(trim(id));
}

// --- after the deployment ---------------------------------------------------------------

std::string_view to_string(PostAction action) {
    switch (action) {
        case PostAction::Reboot:
            return "reboot";
        case PostAction::Poweroff:
            return "poweroff";
        case PostAction::None:
            break;
    }
    return "none";
}

PostAction decide_post_action(AfterDeploy then, bool deployed, bool recorded) {
    if (!deployed || !recorded)
        return PostAction::None;
    switch (then) {
        case AfterDeploy::Reboot:
            return PostAction::Reboot;
        case AfterDeploy::Poweroff:
            return PostAction::Poweroff;
        case AfterDeploy::Seed:
        case AfterDeploy::None:
            break;
    }
    return PostAction::None;
}

// --- eziod.conf editing ----------------------------------------------------------------

std::string format_autodeploy_section(const AutoDeployConfig& config) {
    std::string out = "[autodeploy]\n";
    out += "torrent = " + config_value(config.torrent) + "\n";
    out += "target = " + config_value(config.target) + "\n";
    out += "then = " + std::string(to_string(config.then)) + "\n";
    if (config.seed_time)
        out += "seed_time = " + seed_time_to_string(*config.seed_time) + "\n";
    if (!config.peers.empty()) {
        out += "peers =";
        for (const auto& p : config.peers)
            out += " " + p;
        out += "\n";
    }
    if (config.redeploy)
        out += "redeploy = yes\n";
    return out;
}

std::string replace_autodeploy_section(std::string_view text, std::string_view section) {
    std::string out;
    bool inside = false;
    bool placed = false;
    while (!text.empty()) {
        auto eol = text.find('\n');
        auto line = text.substr(0, eol == std::string_view::npos ? text.size() : eol + 1);
        text.remove_prefix(line.size());
        if (auto name = section_name(line)) {
            inside = *name == "autodeploy";
            if (inside && !placed) {
                out += section;
                placed = true;
            }
        }
        if (inside)
            continue;
        out += line;
        if (line.back() != '\n')
            out += '\n';
    }
    if (!placed && !section.empty()) {
        if (!out.empty() && !out.ends_with("\n\n"))
            out += '\n';
        out += section;
    }
    return out;
}

// --- torrents -----------------------------------------------------------------------------

std::string torrent_info_hash(std::span<const char> torrent) {
    return info_hash_hex(*load_image_torrent(torrent).info);
}

}  // namespace ezio
