// Pure helpers of the command-line client: parsing user input (job
// references, sizes, rates, seed durations, peers) and formatting numbers for
// people. No I/O, no bus; every function is deterministic and unit-tested.
//
// Parsers throw ezio::Error(Errc::InvalidArgs) with a message that names the
// offending text, so ezioctl can print it as is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ezio {

// D-Bus object path prefix of jobs; "/org/ezio/Ezio1/job/" + N.
inline constexpr std::string_view kJobPathPrefix = "/org/ezio/Ezio1/job/";

// "7" or "/org/ezio/Ezio1/job/7" -> 7. Job numbers start at 1.
std::uint32_t parse_job_ref(std::string_view ref);
// 7 -> "/org/ezio/Ezio1/job/7".
std::string job_object_path(std::uint32_t id);
// "/org/ezio/Ezio1/job/7" -> 7; nullopt for any other path.
std::optional<std::uint32_t> job_id_from_path(std::string_view path);

// A byte count with an optional binary suffix: "4096", "16M", "16MiB",
// "1g", "512k". Suffixes are powers of 1024. Throws on overflow, junk, or a
// value above `max`.
std::uint64_t parse_size(std::string_view text, std::uint64_t max = UINT64_MAX);

// A plain decimal count ("16"), at most `max`; `what` names the value in
// the error ("--max-connections").
std::uint64_t parse_count(std::string_view text, std::uint64_t max, std::string_view what);

// --seed-after: "none" -> 0, "forever" -> -1, "N" -> N seconds. Also
// accepts "30s", "10m", "2h", "1d". Returns seconds.
std::int64_t parse_seed_after(std::string_view text);
// The wire form of a parsed --seed-after value: "none", "forever" or the
// number of seconds in decimal.
std::string seed_after_to_string(std::int64_t seconds);

// "host:port", "1.2.3.4:6881", "[::1]:6881". Returns the text unchanged when
// it is well-formed.
std::string parse_peer(std::string_view text);

// 1536 -> "1.5 KiB"; below 1 KiB: "512 B".
std::string format_bytes(std::uint64_t bytes);
// Bytes per second: "110.3 MiB/s".
std::string format_rate(std::uint64_t bytes_per_second);
// Seconds remaining: "42s", "3m05s", "1h02m", "2d03h"; "--" when unknown
// (nullopt).
std::string format_eta(std::optional<std::uint64_t> seconds);
// Fraction 0..1 -> "42.1%" (clamped).
std::string format_percent(double fraction);
// Microseconds since the epoch -> local "2024-05-01 12:34:56"; "-" for 0.
std::string format_timestamp(std::uint64_t usec_since_epoch);
// "[#####-----]" bar of `width` cells (including the brackets).
std::string format_bar(double fraction, int width);

// Seconds until the job ends, from ExpectedEndTime when the daemon knows it
// (µs since the epoch, 0 = unknown), otherwise from the remaining bytes and
// the rate. nullopt when neither gives an answer.
std::optional<std::uint64_t> estimate_eta(std::uint64_t expected_end_usec, std::uint64_t now_usec,
                                          std::uint64_t bytes_done, std::uint64_t bytes_total,
                                          std::uint64_t rate);

}  // namespace ezio
