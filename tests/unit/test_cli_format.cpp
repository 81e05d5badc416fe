// Pure helpers of ezioctl (core/cli_format): parsing what users type and
// formatting numbers for people.
#include <cmath>

#include <gtest/gtest.h>

#include "cli_format.hpp"
#include "error.hpp"

namespace ezio {
namespace {

Errc code_of(auto&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.code();
    }
    ADD_FAILURE() << "no ezio::Error thrown";
    return Errc::Failed;
}

TEST(CliFormat, ParseJobRefAcceptsNumberAndPath) {
    EXPECT_EQ(parse_job_ref("7"), 7u);
    EXPECT_EQ(parse_job_ref("/org/ezio/Ezio1/job/12"), 12u);
    EXPECT_EQ(parse_job_ref("4294967295"), 4294967295u);
}

TEST(CliFormat, ParseJobRefRejectsJunk) {
    for (const char* bad : {"", "0", "-1", "+3", "3x", " 3", "4294967296", "/org/ezio/Ezio1/job/",
                            "/org/ezio/Ezio1/job/0", "/org/ezio/Ezio1/jobs/3",
                            "/org/ezio/Ezio1/job/3/x", "99999999999999999999999"}) {
        EXPECT_EQ(code_of([&] { parse_job_ref(bad); }), Errc::InvalidArgs) << bad;
    }
}

TEST(CliFormat, JobPathsRoundTrip) {
    EXPECT_EQ(job_object_path(3), "/org/ezio/Ezio1/job/3");
    EXPECT_EQ(job_id_from_path("/org/ezio/Ezio1/job/3"), 3u);
    EXPECT_EQ(job_id_from_path("/org/ezio/Ezio1"), std::nullopt);
    EXPECT_EQ(job_id_from_path("/org/ezio/Ezio1/job/abc"), std::nullopt);
}

TEST(CliFormat, ParseSize) {
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_EQ(parse_size("16k"), 16u << 10);
    EXPECT_EQ(parse_size("16K"), 16u << 10);
    EXPECT_EQ(parse_size("16KiB"), 16u << 10);
    EXPECT_EQ(parse_size("4M"), 4u << 20);
    EXPECT_EQ(parse_size("2g"), std::uint64_t{2} << 30);
    EXPECT_EQ(parse_size("1T"), std::uint64_t{1} << 40);
    EXPECT_EQ(parse_size("100b"), 100u);
    EXPECT_EQ(parse_size("4294967295", UINT32_MAX), UINT32_MAX);
}

TEST(CliFormat, ParseSizeRejectsJunkAndOverflow) {
    for (const char* bad :
         {"", "M", "-1", "1.5M", "12 M", "12X", "12MB", "18446744073709551616", "16777216T"}) {
        EXPECT_EQ(code_of([&] { parse_size(bad); }), Errc::InvalidArgs) << bad;
    }
    EXPECT_EQ(code_of([] { parse_size("4G", UINT32_MAX); }), Errc::InvalidArgs);
}

TEST(CliFormat, ParseCount) {
    EXPECT_EQ(parse_count("16", 100, "--x"), 16u);
    EXPECT_EQ(code_of([] { parse_count("101", 100, "--x"); }), Errc::InvalidArgs);
    EXPECT_EQ(code_of([] { parse_count("1k", 100000, "--x"); }), Errc::InvalidArgs);
    try {
        parse_count("zz", 10, "--max-connections");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--max-connections"), std::string::npos);
    }
}

TEST(CliFormat, ParseSeedAfter) {
    EXPECT_EQ(parse_seed_after("none"), 0);
    EXPECT_EQ(parse_seed_after("NONE"), 0);
    EXPECT_EQ(parse_seed_after("forever"), -1);
    EXPECT_EQ(parse_seed_after("0"), 0);
    EXPECT_EQ(parse_seed_after("600"), 600);
    EXPECT_EQ(parse_seed_after("30s"), 30);
    EXPECT_EQ(parse_seed_after("10m"), 600);
    EXPECT_EQ(parse_seed_after("2h"), 7200);
    EXPECT_EQ(parse_seed_after("1d"), 86400);
    for (const char* bad : {"", "-5", "ever", "10x", "1.5h", "99999999999999999999", "9999999999d"})
        EXPECT_EQ(code_of([&] { parse_seed_after(bad); }), Errc::InvalidArgs) << bad;
}

TEST(CliFormat, SeedAfterWireForm) {
    EXPECT_EQ(seed_after_to_string(0), "none");
    EXPECT_EQ(seed_after_to_string(-1), "forever");
    EXPECT_EQ(seed_after_to_string(600), "600");
    EXPECT_EQ(seed_after_to_string(parse_seed_after("2h")), "7200");
}

TEST(CliFormat, ParsePeer) {
    EXPECT_EQ(parse_peer("10.0.0.1:6881"), "10.0.0.1:6881");
    EXPECT_EQ(parse_peer("seeder.lan:1"), "seeder.lan:1");
    EXPECT_EQ(parse_peer("[::1]:6881"), "[::1]:6881");
    EXPECT_EQ(parse_peer("[fe80::1:2]:65535"), "[fe80::1:2]:65535");
    for (const char* bad :
         {"", "host", "host:", ":6881", "host:0", "host:65536", "host:x", "::1:6881", "[::1]",
          "[::1]6881", "[]:1", "[zz]:1", "a b:1", "host:-1"}) {
        EXPECT_EQ(code_of([&] { parse_peer(bad); }), Errc::InvalidArgs) << bad;
    }
}

TEST(CliFormat, FormatBytes) {
    EXPECT_EQ(format_bytes(0), "0 B");
    EXPECT_EQ(format_bytes(1023), "1023 B");
    EXPECT_EQ(format_bytes(1024), "1.0 KiB");
    EXPECT_EQ(format_bytes(1536), "1.5 KiB");
    EXPECT_EQ(format_bytes(std::uint64_t{3} << 30), "3.0 GiB");
    // Just below the next unit: never "1024.0 MiB".
    EXPECT_EQ(format_bytes((std::uint64_t{1} << 30) - 1), "1.0 GiB");
    EXPECT_EQ(format_bytes(UINT64_MAX), "16.0 EiB");
}

TEST(CliFormat, FormatRate) {
    EXPECT_EQ(format_rate(0), "0 B/s");
    EXPECT_EQ(format_rate(110 << 20), "110.0 MiB/s");
}

TEST(CliFormat, FormatEta) {
    EXPECT_EQ(format_eta(std::nullopt), "--");
    EXPECT_EQ(format_eta(0), "0s");
    EXPECT_EQ(format_eta(42), "42s");
    EXPECT_EQ(format_eta(185), "3m05s");
    EXPECT_EQ(format_eta(3720), "1h02m");
    EXPECT_EQ(format_eta(2 * 86400 + 3 * 3600 + 59), "2d03h");
}

TEST(CliFormat, FormatPercentNeverRoundsUpToDone) {
    EXPECT_EQ(format_percent(0.0), "0.0%");
    EXPECT_EQ(format_percent(0.421), "42.1%");
    EXPECT_EQ(format_percent(0.99999), "99.9%");
    EXPECT_EQ(format_percent(1.0), "100.0%");
    EXPECT_EQ(format_percent(-1.0), "0.0%");
    EXPECT_EQ(format_percent(7.0), "100.0%");
    EXPECT_EQ(format_percent(std::nan("")), "0.0%");
}

TEST(CliFormat, FormatBar) {
    EXPECT_EQ(format_bar(0.0, 12), "[----------]");
    EXPECT_EQ(format_bar(0.5, 12), "[#####-----]");
    EXPECT_EQ(format_bar(1.0, 12), "[##########]");
    EXPECT_EQ(format_bar(2.0, 4), "[##]");
    EXPECT_EQ(format_bar(0.5, 2), "");
}

TEST(CliFormat, FormatTimestamp) {
    EXPECT_EQ(format_timestamp(0), "-");
    EXPECT_EQ(format_timestamp(1'700'000'000'000'000).size(),
              std::string("2023-11-14 22:13:20").size());
}

TEST(CliFormat, EstimateEta) {
    // The daemon's estimate wins, rounded up to whole seconds.
    EXPECT_EQ(estimate_eta(10'500'000, 1'000'000, 0, 100, 1), 10u);
    EXPECT_EQ(estimate_eta(1'000'000, 5'000'000, 0, 100, 1), 0u);
    // Otherwise remaining bytes over the rate.
    EXPECT_EQ(estimate_eta(0, 0, 50, 150, 10), 10u);
    EXPECT_EQ(estimate_eta(0, 0, 50, 151, 10), 11u);
    EXPECT_EQ(estimate_eta(0, 0, 50, 150, 0), std::nullopt);
    EXPECT_EQ(estimate_eta(0, 0, 150, 150, 10), std::nullopt);
    EXPECT_EQ(estimate_eta(0, 0, 0, 0, 10), std::nullopt);
}

}  // namespace
}  // namespace ezio
