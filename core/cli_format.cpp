#include "cli_format.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>

#include "error.hpp"

namespace ezio {
namespace {

[[noreturn]] void invalid(const std::string& message) {
    throw Error(Errc::InvalidArgs, message);
}

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

// Decimal digits only (no sign, no spaces); nullopt on junk or overflow.
std::optional<std::uint64_t> parse_decimal(std::string_view digits) {
    if (digits.empty())
        return std::nullopt;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        return std::nullopt;
    return value;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Splits "123abc" into "123" and "abc".
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
        ++i;
    return {text.substr(0, i), text.substr(i)};
}

std::string one_decimal(double value) {
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1f", value);
    return buf.data();
}

}  // namespace

std::uint32_t parse_job_ref(std::string_view ref) {
    std::string_view digits = ref;
    if (ref.starts_with(kJobPathPrefix))
        digits = ref.substr(kJobPathPrefix.size());
    auto value = parse_decimal(digits);
    if (!value || *value == 0 || *value > UINT32_MAX)
        invalid("invalid job " + quoted(ref) + ": expected a job number or " +
                std::string(kJobPathPrefix) + "N");
    return static_cast<std::uint32_t>(*value);
}

std::string job_object_path(std::uint32_t id) {
    return std::string(kJobPathPrefix) + std::to_string(id);
}

std::optional<std::uint32_t> job_id_from_path(std::string_view path) {
    if (!path.starts_with(kJobPathPrefix))
        return std::nullopt;
    auto value = parse_decimal(path.substr(kJobPathPrefix.size()));
    if (!value || *value == 0 || *value > UINT32_MAX)
        return std::nullopt;
    return static_cast<std::uint32_t>(*value);
}

std::uint64_t parse_size(std::string_view text, std::uint64_t max) {
    auto [digits, suffix] = split_number(text);
    auto value = parse_decimal(digits);
    if (!value)
        invalid("invalid size " + quoted(text) + ": expected a number of bytes");
    const std::string unit = lower(suffix);
    unsigned shift = 0;
    if (unit.empty() || unit == "b") {
        shift = 0;
    } else if (unit == "k" || unit == "kib") {
        shift = 10;
    } else if (unit == "m" || unit == "mib") {
        shift = 20;
    } else if (unit == "g" || unit == "gib") {
        shift = 30;
    } else if (unit == "t" || unit == "tib") {
        shift = 40;
    } else {
        invalid("invalid size " + quoted(text) + ": unknown unit " + quoted(suffix) +
                " (use K, M, G or T)");
    }
    if (shift > 0 && *value > (UINT64_MAX >> shift))
        invalid("size " + quoted(text) + " is too large");
    const std::uint64_t bytes = *value << shift;
    if (bytes > max)
        invalid("size " + quoted(text) + " is too large (at most " + std::to_string(max) + ")");
    return bytes;
}

std::uint64_t parse_count(std::string_view text, std::uint64_t max, std::string_view what) {
    auto value = parse_decimal(text);
    if (!value)
        invalid("invalid " + std::string(what) + " " + quoted(text) + ": expected a number");
    if (*value > max)
        invalid(std::string(what) + " " + quoted(text) + " is too large (at most " +
                std::to_string(max) + ")");
    return *value;
}

std::int64_t parse_seed_after(std::string_view text) {
    const std::string word = lower(text);
    if (word == "none")
        return 0;
    if (word == "forever")
        return -1;
    auto [digits, suffix] = split_number(text);
    auto value = parse_decimal(digits);
    std::uint64_t scale = 0;
    const std::string unit = lower(suffix);
    if (unit.empty() || unit == "s") {
        scale = 1;
    } else if (unit == "m") {
        scale = 60;
    } else if (unit == "h") {
        scale = 3600;
    } else if (unit == "d") {
        scale = 86400;
    }
    // Cap at ~68 years: anything longer is "forever" in practice and keeps
    // the value far from int64 overflow.
    constexpr std::uint64_t kMax = std::uint64_t{1} << 31;
    if (!value || scale == 0)
        invalid("invalid --seed-after " + quoted(text) +
                ": expected none, forever, or a duration such as 600, 10m, 2h");
    if (*value > kMax / scale)
        invalid("--seed-after " + quoted(text) + " is too long; use forever");
    return static_cast<std::int64_t>(*value * scale);
}

std::string seed_after_to_string(std::int64_t seconds) {
    if (seconds < 0)
        return "forever";
    if (seconds == 0)
        return "none";
    return std::to_string(seconds);
}

std::string parse_peer(std::string_view text) {
    auto bad = [&](const std::string& why) {
        invalid("invalid peer " + quoted(text) + ": " + why +
                " (expected HOST:PORT or [V6ADDR]:PORT)");
    };
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            bad("missing ']'");
        host = text.substr(1, close - 1);
        if (close + 1 >= text.size() || text[close + 1] != ':')
            bad("missing port");
        port = text.substr(close + 2);
        if (host.empty() ||
            host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
            bad("not an IPv6 address");
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            bad("missing port");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            bad("put IPv6 addresses in brackets");
        if (host.empty())
            bad("missing host");
        for (char c : host)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
                bad("bad character in host name");
    }
    auto value = parse_decimal(port);
    if (!value || *value == 0 || *value > 65535)
        bad("port must be 1-65535");
    return std::string(text);
}

std::string format_bytes(std::uint64_t bytes) {
    static constexpr std::array<const char*, 6> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    // Switch units before rounding would print "1024.0".
    while (value >= 1023.95 && unit + 1 < kUnits.size()) {
        value /= 1024.0;
        ++unit;
    }
    return one_decimal(value) + " " + kUnits[unit];
}

std::string format_rate(std::uint64_t bytes_per_second) {
    return format_bytes(bytes_per_second) + "/s";
}

std::string format_eta(std::optional<std::uint64_t> seconds) {
    if (!seconds)
        return "--";
    const std::uint64_t s = *seconds;
    std::array<char, 48> buf{};
    if (s < 60) {
        std::snprintf(buf.data(), buf.size(), "%llus", static_cast<unsigned long long>(s));
    } else if (s < 3600) {
        std::snprintf(buf.data(), buf.size(), "%llum%02llus",
                      static_cast<unsigned long long>(s / 60),
                      static_cast<unsigned long long>(s % 60));
    } else if (s < 86400) {
        std::snprintf(buf.data(), buf.size(), "%lluh%02llum",
                      static_cast<unsigned long long>(s / 3600),
                      static_cast<unsigned long long>(s % 3600 / 60));
    } else {
        std::snprintf(buf.data(), buf.size(), "%llud%02lluh",
                      static_cast<unsigned long long>(s / 86400),
                      static_cast<unsigned long long>(s % 86400 / 3600));
    }
    return buf.data();
}

std::string format_percent(double fraction) {
    if (!(fraction >= 0.0))
        fraction = 0.0;  // also catches NaN
    if (fraction > 1.0)
        fraction = 1.0;
    // Never show 100.0% before the job is really done.
    double percent = std::floor(fraction * 1000.0) / 10.0;
    return one_decimal(percent) + "%";
}

std::string format_timestamp(std::uint64_t usec_since_epoch) {
    if (usec_since_epoch == 0)
        return "-";
    const std::time_t t = static_cast<std::time_t>(usec_since_epoch / 1000000);
    std::tm tm{};
    if (!localtime_r(&t, &tm))
        return "-";
    std::array<char, 64> buf{};
    if (std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%S", &tm) == 0)
        return "-";
    return buf.data();
}

std::string format_bar(double fraction, int width) {
    if (width < 3)
        return "";
    if (!(fraction >= 0.0))
        fraction = 0.0;
    if (fraction > 1.0)
        fraction = 1.0;
    const int cells = width - 2;
    const int filled = static_cast<int>(std::floor(fraction * cells));
    return "[" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(cells - filled), '-') + "]";
}

std::optional<std::uint64_t> estimate_eta(std::uint64_t expected_end_usec, std::uint64_t now_usec,
                                          std::uint64_t bytes_done, std::uint64_t bytes_total,
                                          std::uint64_t rate) {
    if (expected_end_usec != 0)
        return expected_end_usec > now_usec ? (expected_end_usec - now_usec + 999999) / 1000000 : 0;
    if (bytes_total == 0 || bytes_done >= bytes_total)
        return std::nullopt;
    if (rate == 0)
        return std::nullopt;
    return (bytes_total - bytes_done + rate - 1) / rate;
}

}  // namespace ezio
