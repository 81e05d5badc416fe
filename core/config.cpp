#include "config.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>

#include "cli_format.hpp"

namespace ezio {
namespace {

constexpr std::array kLogLevels{
    std::pair{LogLevel::Debug, std::string_view{"debug"}},
    std::pair{LogLevel::Info, std::string_view{"info"}},
    std::pair{LogLevel::Notice, std::string_view{"notice"}},
    std::pair{LogLevel::Warning, std::string_view{"warning"}},
    std::pair{LogLevel::Error, std::string_view{"error"}},
};

constexpr std::array kAfterDeploy{
    std::pair{AfterDeploy::None, std::string_view{"none"}},
    std::pair{AfterDeploy::Reboot, std::string_view{"reboot"}},
    std::pair{AfterDeploy::Poweroff, std::string_view{"poweroff"}},
    std::pair{AfterDeploy::Seed, std::string_view{"seed"}},
};

constexpr std::string_view kBlanks = " \t\r";

std::string_view trim(std::string_view s) {
    auto first = s.find_first_not_of(kBlanks);
    if (first == std::string_view::npos)
        return {};
    auto last = s.find_last_not_of(kBlanks);
    return s.substr(first, last - first + 1);
}

template <typename Int>
std::optional<Int> parse_int(std::string_view text, Int min, Int max) {
    Int value{};
    if (text.empty() || text.front() == '+')
        return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        return std::nullopt;
    if (value < min || value > max)
        return std::nullopt;
    return value;
}

std::optional<bool> parse_bool(std::string_view text) {
    return parse_yes_no(text);
}

class Parser {
  public:
    Parser(const std::string& origin, DaemonConfig base)
        : origin_(origin), config_(std::move(base)) {}

    DaemonConfig run(std::string_view text) {
        if (text.size() > kMaxConfigBytes)
            fail_file("file is larger than " + std::to_string(kMaxConfigBytes) + " bytes");
        if (text.find('\0') != std::string_view::npos)
            fail_file("file contains a NUL byte");
        while (!text.empty()) {
            ++line_;
            auto eol = text.find('\n');
            line(text.substr(0, eol));
            text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        }
        check();
        return std::move(config_);
    }

  private:
    [[noreturn]] void fail_file(const std::string& message) const {
        throw Error(Errc::InvalidArgs, origin_ + ": " + message);
    }
    [[noreturn]] void fail(const std::string& message) const {
        throw Error(Errc::InvalidArgs, origin_ + ":" + std::to_string(line_) + ": " + message);
    }

    void line(std::string_view raw) {
        auto text = trim(raw);
        if (text.empty() || text.front() == '#' || text.front() == ';')
            return;
        if (text.front() == '[') {
            if (text.back() != ']')
                fail("section header is missing ']'");
            auto name = trim(text.substr(1, text.size() - 2));
            if (name != "daemon" && name != "autodeploy" && name != "duplicator")
                fail("unknown section [" + std::string(name) + "]");
            section_ = name;
            return;
        }
        auto eq = text.find('=');
        if (eq == std::string_view::npos)
            fail("expected 'key = value', '[section]' or a comment");
        auto key = trim(text.substr(0, eq));
        auto value = trim(text.substr(eq + 1));
        if (key.empty())
            fail("missing key before '='");
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        else if (!value.empty() && (value.front() == '"' || value.back() == '"'))
            fail("unbalanced quotes in value of '" + std::string(key) + "'");
        if (section_.empty())
            fail("key '" + std::string(key) + "' outside of any section");
        if (section_ == "daemon")
            daemon_key(key, value);
        else if (section_ == "duplicator")
            duplicator_key(key, value);
        else
            autodeploy_key(key, value);
    }

    [[noreturn]] void bad_value(std::string_view key, std::string_view value,
                                std::string_view expected) const {
        fail("invalid value '" + std::string(value) + "' for '" + std::string(key) +
             "': expected " + std::string(expected));
    }

    void daemon_key(std::string_view key, std::string_view value) {
        auto& engine = config_.engine;
        if (key == "listen_port") {
            auto port = parse_int<int>(value, 0, 65535);
            if (!port)
                bad_value(key, value, "a port number 0..65535");
            engine.listen_port = *port;
        } else if (key == "listen_interface") {
            if (value.empty())
                bad_value(key, value, "an address");
            engine.listen_interface = value;
        } else if (key == "state_dir") {
            if (!value.empty() && value.front() != '/')
                bad_value(key, value, "an absolute path");
            engine.state_dir = value;
        } else if (key == "log_level") {
            auto level = parse_log_level(value);
            if (!level)
                bad_value(key, value, "debug, info, notice, warning or error");
            config_.log_level = *level;
        } else if (key == "io_threads") {
            auto n = parse_int<int>(value, 0, 1024);
            if (!n)
                bad_value(key, value, "a number of threads 0..1024");
            engine.io_threads = *n;
        } else if (key == "direct_io") {
            if (value == "auto")
                engine.direct_io = DirectIo::Auto;
            else if (auto b = parse_bool(value))
                engine.direct_io = *b ? DirectIo::Always : DirectIo::Never;
            else
                bad_value(key, value, "auto, yes or no");
        } else if (key == "paced_seeding") {
            auto b = parse_bool(value);
            if (!b)
                bad_value(key, value, "yes or no");
            engine.paced_seeding = *b;
        } else if (key == "local_discovery") {
            auto b = parse_bool(value);
            if (!b)
                bad_value(key, value, "yes or no");
            engine.local_discovery = *b;
        } else {
            fail("unknown key '" + std::string(key) + "' in [daemon]");
        }
    }

    void autodeploy_key(std::string_view key, std::string_view value) {
        auto& ad = config_.autodeploy;
        if (key == "torrent") {
            ad.torrent = value;
        } else if (key == "target") {
            ad.target = value;
        } else if (key == "then") {
            auto then = parse_after_deploy(value);
            if (!then)
                bad_value(key, value, "reboot, poweroff, seed or none");
            ad.then = *then;
        } else if (key == "seed_time") {
            auto t = parse_seed_time(value);
            if (!t)
                bad_value(key, value, "none, forever or a number of seconds");
            ad.seed_time = *t;
        } else if (key == "peers") {
            auto peers = parse_peer_list(value);
            if (!peers)
                bad_value(key, value, "host:port entries separated by blanks or commas");
            ad.peers = std::move(*peers);
        } else if (key == "redeploy") {
            auto b = parse_bool(value);
            if (!b)
                bad_value(key, value, "yes or no");
            ad.redeploy = *b;
        } else {
            fail("unknown key '" + std::string(key) + "' in [autodeploy]");
        }
    }

    void duplicator_key(std::string_view key, std::string_view value) {
        auto& dup = config_.duplicator;
        duplicator_keys_ = true;
        const auto size = [&] {
            try {
                return parse_size(value);
            } catch (const Error&) {
                bad_value(key, value, "a size in bytes, with an optional K, M, G or T suffix");
            }
        };
        const auto boolean = [&] {
            auto b = parse_bool(value);
            if (!b)
                bad_value(key, value, "yes or no");
            return *b;
        };
        if (key == "torrent") {
            dup.torrent = value;
        } else if (key == "match_property") {
            const auto eq = value.find('=');
            if (eq == std::string_view::npos || eq == 0)
                bad_value(key, value, "KEY=GLOB");
            dup.match.property = std::string(value);
        } else if (key == "match_by_path") {
            if (value.empty())
                bad_value(key, value, "a glob such as pci-0000:00:1f.2-ata-*");
            dup.match.by_path = std::string(value);
        } else if (key == "min_size") {
            dup.match.min_size = size();
        } else if (key == "max_size") {
            dup.match.max_size = size();
        } else if (key == "partitions") {
            dup.match.partitions = boolean();
        } else if (key == "verify") {
            dup.verify = boolean();
        } else if (key == "peers") {
            auto peers = parse_peer_list(value);
            if (!peers)
                bad_value(key, value, "host:port entries separated by blanks or commas");
            dup.peers = std::move(*peers);
        } else {
            fail("unknown key '" + std::string(key) + "' in [duplicator]");
        }
    }

    void check() const {
        const auto& ad = config_.autodeploy;
        if (ad.torrent.empty() != ad.target.empty())
            fail_file("[autodeploy] needs both 'torrent' and 'target'");
        const auto& dup = config_.duplicator;
        if (duplicator_keys_ && dup.torrent.empty())
            fail_file("[duplicator] needs 'torrent'");
        if (dup.enabled()) {
            try {
                dup.match.validate();
            } catch (const Error& e) {
                fail_file(std::string("[duplicator]: ") + e.what());
            }
        }
    }

    const std::string& origin_;
    DaemonConfig config_;
    std::string_view section_;
    int line_ = 0;
    bool duplicator_keys_ = false;  // a [duplicator] key was given
};

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view text) {
    for (auto [level, name] : kLogLevels)
        if (name == text)
            return level;
    return std::nullopt;
}

std::string_view to_string(LogLevel level) {
    for (auto [l, name] : kLogLevels)
        if (l == level)
            return name;
    return "info";
}

std::optional<AfterDeploy> parse_after_deploy(std::string_view text) {
    for (auto [then, name] : kAfterDeploy)
        if (name == text)
            return then;
    return std::nullopt;
}

std::string_view to_string(AfterDeploy then) {
    for (auto [t, name] : kAfterDeploy)
        if (t == then)
            return name;
    return "none";
}

std::optional<std::int64_t> parse_seed_time(std::string_view text) {
    if (text == "none")
        return 0;
    if (text == "forever")
        return -1;
    return parse_int<std::int64_t>(text, 0, std::numeric_limits<std::int64_t>::max());
}

std::string seed_time_to_string(std::int64_t seconds) {
    if (seconds == 0)
        return "none";
    if (seconds < 0)
        return "forever";
    return std::to_string(seconds);
}

std::optional<bool> parse_yes_no(std::string_view text) {
    for (auto t : {"yes", "true", "on", "1"})
        if (text == t)
            return true;
    for (auto f : {"no", "false", "off", "0"})
        if (text == f)
            return false;
    return std::nullopt;
}

std::optional<std::vector<std::string>> parse_peer_list(std::string_view text) {
    std::vector<std::string> peers;
    constexpr std::string_view kSeparators = " \t,";
    while (!text.empty()) {
        auto start = text.find_first_not_of(kSeparators);
        if (start == std::string_view::npos)
            break;
        text.remove_prefix(start);
        auto end = text.find_first_of(kSeparators);
        auto word = text.substr(0, end);
        try {
            peers.push_back(parse_peer(word));
        } catch (const Error&) {
            return std::nullopt;
        }
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end);
    }
    return peers;
}

DaemonConfig parse_config(std::string_view text, const std::string& origin, DaemonConfig base) {
    return Parser(origin, std::move(base)).run(text);
}

DaemonConfig load_config(const std::string& path, bool missing_ok, DaemonConfig base) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int err = errno;
        if (err == ENOENT && missing_ok)
            return base;
        throw Error(Errc::InvalidArgs, "cannot read " + path + ": " + std::strerror(err));
    }
    // Read one byte past the limit so an oversized file is reported, not cut.
    std::string text(kMaxConfigBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad())
        throw Error(Errc::InvalidArgs, "cannot read " + path);
    text.resize(static_cast<std::size_t>(in.gcount()));
    return parse_config(text, path, std::move(base));
}

}  // namespace ezio
