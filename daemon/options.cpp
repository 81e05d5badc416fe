#include "options.hpp"

#include <climits>
#include <cstdint>
#include <limits>
#include <string_view>

#include "config.hpp"
#include "target_path.hpp"

namespace ezio::daemon {
namespace {

enum Key : unsigned {
    kPeers = 1u << 0,
    kVerify = 1u << 1,
    kSeedAfter = 1u << 2,
    kMaxUploadRate = 1u << 3,
    kMaxDownloadRate = 1u << 4,
    kMaxConnections = 1u << 5,
    kSequential = 1u << 6,
    kForce = 1u << 7,
    kFile = 1u << 8,
};

struct KeyName {
    Key key;
    std::string_view name;
};

constexpr KeyName kKeys[] = {
    {kPeers, "peers"},
    {kVerify, "verify"},
    {kSeedAfter, "seed_after"},
    {kMaxUploadRate, "max_upload_rate"},
    {kMaxDownloadRate, "max_download_rate"},
    {kMaxConnections, "max_connections"},
    {kSequential, "sequential"},
    {kForce, "force"},
    {kFile, "file"},
};

constexpr unsigned kDeployKeys = kPeers | kVerify | kSeedAfter | kMaxUploadRate | kMaxDownloadRate |
                                 kMaxConnections | kSequential | kForce | kFile;
constexpr unsigned kSeedKeys = kPeers | kVerify | kMaxUploadRate | kMaxConnections | kForce | kFile;

[[noreturn]] void invalid(const std::string& message) {
    throw Error(Errc::InvalidArgs, message);
}

[[noreturn]] void wrong_type(const std::string& key, const sdbus::Variant& value,
                             std::string_view expected) {
    invalid("option '" + key + "' must be of type " + std::string(expected) + ", not '" +
            value.peekValueType() + "'");
}

bool get_bool(const std::string& key, const sdbus::Variant& value) {
    if (value.peekValueType() != "b")
        wrong_type(key, value, "'b'");
    return value.get<bool>();
}

// Unsigned 32 or 64 bit, at most `max`.
std::uint64_t get_unsigned(const std::string& key, const sdbus::Variant& value, std::uint64_t max) {
    auto type = value.peekValueType();
    std::uint64_t n = 0;
    if (type == "u")
        n = value.get<std::uint32_t>();
    else if (type == "t")
        n = value.get<std::uint64_t>();
    else
        wrong_type(key, value, "'u' or 't'");
    if (n > max)
        invalid("option '" + key + "' is too large (at most " + std::to_string(max) + ")");
    return n;
}

std::vector<std::string> get_peers(const std::string& key, const sdbus::Variant& value) {
    if (value.peekValueType() != "as")
        wrong_type(key, value, "'as'");
    auto peers = value.get<std::vector<std::string>>();
    for (const auto& peer : peers) {
        // Full address parsing is the engine's; refuse what is clearly not
        // "host:port" here so the message names the option.
        auto colon = peer.rfind(':');
        bool ok = colon != std::string::npos && colon > 0 && colon + 1 < peer.size() &&
                  peer.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                  peer.size() - colon - 1 <= 5 && std::stoul(peer.substr(colon + 1)) >= 1 &&
                  std::stoul(peer.substr(colon + 1)) <= 65535;
        if (!ok)
            invalid("option 'peers': '" + peer + "' is not host:port");
    }
    return peers;
}

std::int64_t get_seed_after(const std::string& key, const sdbus::Variant& value) {
    auto type = value.peekValueType();
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (type == "s") {
        auto text = value.get<std::string>();
        auto seconds = parse_seed_time(text);
        if (!seconds)
            invalid("option '" + key + "': '" + text +
                    "' is not \"none\", \"forever\" or a number of seconds");
        return *seconds;
    }
    if (type == "x") {
        auto n = value.get<std::int64_t>();
        if (n < 0)
            invalid("option '" + key + "' must not be negative");
        return n;
    }
    if (type == "u" || type == "t")
        return static_cast<std::int64_t>(get_unsigned(key, value, max));
    wrong_type(key, value, "'s', 't', 'u' or 'x'");
}

// Applies every option to `job`/`file`, refusing keys outside `allowed`.
void parse(const VariantMap& options, unsigned allowed, std::string_view method, JobOptions& job,
           bool& file) {
    for (const auto& [key, value] : options) {
        unsigned k = 0;
        for (const auto& kn : kKeys)
            if (kn.name == key)
                k = kn.key;
        if (!(k & allowed))
            invalid("unsupported option '" + key + "' for " + std::string(method));
        switch (k) {
            case kPeers:
                job.peers = get_peers(key, value);
                break;
            case kVerify:
                job.verify = get_bool(key, value);
                break;
            case kSeedAfter:
                job.seed_after = get_seed_after(key, value);
                break;
            case kMaxUploadRate:
                job.max_upload_rate = static_cast<int>(get_unsigned(key, value, INT_MAX));
                break;
            case kMaxDownloadRate:
                job.max_download_rate = static_cast<int>(get_unsigned(key, value, INT_MAX));
                break;
            case kMaxConnections:
                job.max_connections = static_cast<int>(get_unsigned(key, value, INT_MAX));
                break;
            case kSequential:
                job.sequential = get_bool(key, value);
                break;
            case kForce:
                job.force = get_bool(key, value);
                break;
            case kFile:
                file = get_bool(key, value);
                break;
        }
    }
}

bool is_bare_name(const std::string& s) {
    return !s.empty() && s.find('/') == std::string::npos && s != "." && s != "..";
}

void require_usable_path(const std::string& path, std::string_view what) {
    if (path.empty())
        throw Error(Errc::InvalidTarget, std::string(what) + " is empty");
    if (path.find('\0') != std::string::npos)
        throw Error(Errc::InvalidTarget, std::string(what) + " contains a NUL byte");
}

}  // namespace

DeployOptions parse_deploy_options(const VariantMap& options) {
    DeployOptions out;
    parse(options, kDeployKeys, "Deploy", out.job, out.file);
    return out;
}

JobOptions parse_seed_options(const VariantMap& options) {
    JobOptions job;
    bool file = false;
    parse(options, kSeedKeys, "Seed", job, file);
    // "verify" on a seed means: do not trust the source, hash it first.
    job.seed_verified = !job.verify;
    job.verify = false;
    return job;
}

void parse_cancel_options(const VariantMap& options) {
    if (!options.empty())
        invalid("unsupported option '" + options.begin()->first + "' for Cancel");
}

std::string resolve_deploy_target(const std::string& target, bool file) {
    require_usable_path(target, "target");
    if (file) {
        if (target.front() != '/')
            throw Error(Errc::InvalidTarget,
                        "file target '" + target + "' is not an absolute path");
        return resolve_target_path(target, TargetKind::File);
    }
    if (!is_bare_name(target) && target.front() != '/')
        throw Error(Errc::InvalidTarget,
                    "target '" + target + "' is neither a device name nor an absolute path");
    return resolve_target_path(target, TargetKind::Device);
}

std::string resolve_seed_source(const std::string& source) {
    require_usable_path(source, "source");
    if (is_bare_name(source))
        return resolve_target_path(source, TargetKind::Device);
    if (source.front() != '/')
        throw Error(Errc::InvalidTarget,
                    "source '" + source + "' is neither a device name nor an absolute path");
    return resolve_target_path(source, TargetKind::DeviceOrFile);
}

}  // namespace ezio::daemon
