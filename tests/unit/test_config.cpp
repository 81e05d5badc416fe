// core/config: the eziod.conf parser, including malformed input.
#include "config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace ezio {
namespace {

DaemonConfig parse(std::string_view text) {
    return parse_config(text, "test.conf");
}

// Expects InvalidArgs whose message contains `needle` (e.g. "test.conf:3:").
void expect_invalid(std::string_view text, const std::string& needle) {
    try {
        parse(text);
        ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgs);
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "message '" << e.what() << "' lacks '" << needle << "'";
    }
}

TEST(Config, EmptyTextGivesDefaults) {
    auto c = parse("");
    EngineConfig defaults;
    EXPECT_EQ(c.engine.listen_port, defaults.listen_port);
    EXPECT_EQ(c.engine.listen_interface, defaults.listen_interface);
    EXPECT_EQ(c.engine.state_dir, defaults.state_dir);
    EXPECT_EQ(c.log_level, LogLevel::Info);
    EXPECT_EQ(c.engine.direct_io, DirectIo::Auto);
    EXPECT_FALSE(c.autodeploy.enabled());
}

TEST(Config, PacedSeedingIsOnByDefault) {
    EXPECT_TRUE(parse("").engine.paced_seeding);
    EXPECT_FALSE(parse("[daemon]\npaced_seeding = no\n").engine.paced_seeding);
    expect_invalid("[daemon]\npaced_seeding = some\n", "paced_seeding");
}

TEST(Config, DirectIoIsAutoYesOrNo) {
    EXPECT_EQ(parse("[daemon]\ndirect_io = auto\n").engine.direct_io, DirectIo::Auto);
    EXPECT_EQ(parse("[daemon]\ndirect_io = yes\n").engine.direct_io, DirectIo::Always);
    EXPECT_EQ(parse("[daemon]\ndirect_io = off\n").engine.direct_io, DirectIo::Never);
    expect_invalid("[daemon]\ndirect_io = sometimes\n", "direct_io");
}

TEST(Config, FullFile) {
    auto c = parse(
        "# eziod configuration\n"
        "; another comment style\n"
        "\n"
        "[daemon]\n"
        "listen_port = 7000\n"
        "  listen_interface=127.0.0.1  \n"
        "state_dir = /var/lib/ezio\r\n"
        "log_level = debug\n"
        "io_threads = 4\n"
        "direct_io = no\n"
        "local_discovery = no\n"
        "[ autodeploy ]\n"
        "torrent = http://server/sda1.torrent\n"
        "target = sda1\n"
        "then = seed\n"
        "seed_time = 600\n");
    EXPECT_EQ(c.engine.listen_port, 7000);
    EXPECT_EQ(c.engine.listen_interface, "127.0.0.1");
    EXPECT_EQ(c.engine.state_dir, "/var/lib/ezio");
    EXPECT_EQ(c.log_level, LogLevel::Debug);
    EXPECT_EQ(c.engine.io_threads, 4);
    EXPECT_EQ(c.engine.direct_io, DirectIo::Never);
    EXPECT_FALSE(c.engine.local_discovery);
    ASSERT_TRUE(c.autodeploy.enabled());
    EXPECT_EQ(c.autodeploy.torrent, "http://server/sda1.torrent");
    EXPECT_EQ(c.autodeploy.target, "sda1");
    EXPECT_EQ(c.autodeploy.then, AfterDeploy::Seed);
    EXPECT_EQ(c.autodeploy.seed_time, 600);
}

TEST(Config, LastValueWinsAndQuotesKeepBlanks) {
    auto c = parse("[daemon]\nlisten_port = 1\nlisten_port = 2\nlisten_interface = \" ::1 \"\n");
    EXPECT_EQ(c.engine.listen_port, 2);
    EXPECT_EQ(c.engine.listen_interface, " ::1 ");
}

TEST(Config, NoTrailingNewline) {
    EXPECT_EQ(parse("[daemon]\nlisten_port = 0").engine.listen_port, 0);
}

TEST(Config, BaseCarriesOver) {
    DaemonConfig base;
    base.engine.listen_port = 1234;
    base.log_level = LogLevel::Warning;
    auto c = parse_config("[daemon]\nio_threads = 2\n", "x", base);
    EXPECT_EQ(c.engine.listen_port, 1234);
    EXPECT_EQ(c.log_level, LogLevel::Warning);
    EXPECT_EQ(c.engine.io_threads, 2);
}

TEST(Config, Booleans) {
    for (auto t : {"yes", "true", "on", "1"})
        EXPECT_TRUE(parse(std::string("[daemon]\nlocal_discovery=") + t).engine.local_discovery);
    for (auto f : {"no", "false", "off", "0"})
        EXPECT_FALSE(parse(std::string("[daemon]\nlocal_discovery=") + f).engine.local_discovery);
    expect_invalid("[daemon]\nlocal_discovery = maybe\n", "test.conf:2:");
}

TEST(Config, AfterDeployValues) {
    for (auto [text, then] :
         {std::pair{"none", AfterDeploy::None}, std::pair{"reboot", AfterDeploy::Reboot},
          std::pair{"poweroff", AfterDeploy::Poweroff}, std::pair{"seed", AfterDeploy::Seed}}) {
        auto c = parse(std::string("[autodeploy]\ntorrent=a\ntarget=b\nthen=") + text);
        EXPECT_EQ(c.autodeploy.then, then);
        EXPECT_EQ(to_string(then), text);
    }
}

TEST(Config, SeedTime) {
    EXPECT_EQ(parse_seed_time("none"), 0);
    EXPECT_EQ(parse_seed_time("forever"), -1);
    EXPECT_EQ(parse_seed_time("0"), 0);
    EXPECT_EQ(parse_seed_time("86400"), 86400);
    EXPECT_EQ(parse_seed_time(""), std::nullopt);
    EXPECT_EQ(parse_seed_time("-1"), std::nullopt);
    EXPECT_EQ(parse_seed_time("+5"), std::nullopt);
    EXPECT_EQ(parse_seed_time("5s"), std::nullopt);
    EXPECT_EQ(parse_seed_time(" 5"), std::nullopt);
    EXPECT_EQ(parse_seed_time("99999999999999999999"), std::nullopt);
}

TEST(Config, LogLevels) {
    for (auto name : {"debug", "info", "notice", "warning", "error"}) {
        auto level = parse_log_level(name);
        ASSERT_TRUE(level) << name;
        EXPECT_EQ(to_string(*level), name);
    }
    EXPECT_EQ(parse_log_level("INFO"), std::nullopt);
    EXPECT_EQ(parse_log_level("trace"), std::nullopt);
}

TEST(ConfigMalformed, Syntax) {
    expect_invalid("listen_port = 1\n", "outside of any section");
    expect_invalid("[daemon\n", "test.conf:1: section header is missing ']'");
    expect_invalid("[daemon]\nlisten_port 7000\n", "test.conf:2: expected 'key = value'");
    expect_invalid("[daemon]\n = 7000\n", "missing key");
    expect_invalid("[daemon]\nlisten_interface = \"::1\n", "unbalanced quotes");
    expect_invalid("[nope]\n", "unknown section [nope]");
    expect_invalid("[]\n", "unknown section");
    expect_invalid("[daemon]\nlisten_prot = 1\n", "unknown key 'listen_prot' in [daemon]");
    expect_invalid("[autodeploy]\nthen_what = 1\n", "unknown key 'then_what' in [autodeploy]");
    expect_invalid("[daemon]\nlisten_port = 1\n[daemon]\nfoo=bar\n", "test.conf:4:");
}

TEST(ConfigMalformed, Values) {
    expect_invalid("[daemon]\nlisten_port = 65536\n", "listen_port");
    expect_invalid("[daemon]\nlisten_port = -1\n", "listen_port");
    expect_invalid("[daemon]\nlisten_port = 80x\n", "listen_port");
    expect_invalid("[daemon]\nlisten_port =\n", "listen_port");
    expect_invalid("[daemon]\nlisten_port = 0x50\n", "listen_port");
    expect_invalid("[daemon]\nio_threads = 100000\n", "io_threads");
    expect_invalid("[daemon]\nlisten_interface =\n", "listen_interface");
    expect_invalid("[daemon]\nstate_dir = relative/dir\n", "absolute path");
    expect_invalid("[daemon]\nlog_level = loud\n", "log_level");
    expect_invalid("[autodeploy]\ntorrent=a\ntarget=b\nthen = explode\n", "then");
    expect_invalid("[autodeploy]\ntorrent=a\ntarget=b\nseed_time = soon\n", "seed_time");
}

TEST(ConfigMalformed, AutoDeployNeedsBoth) {
    expect_invalid("[autodeploy]\ntorrent = a.torrent\n", "needs both");
    expect_invalid("[autodeploy]\ntarget = sda1\n", "needs both");
}

TEST(ConfigMalformed, BinaryAndHuge) {
    expect_invalid(std::string_view("[daemon]\0\n", 10), "NUL");
    expect_invalid(std::string(kMaxConfigBytes + 1, '#'), "larger than");
    expect_invalid("[\x80\xff]\n", "unknown section");
    expect_invalid("[daemon]\n\xff\xfe = 1\n", "unknown key");
}

class ConfigFile : public ::testing::Test {
  protected:
    std::filesystem::path dir_ =
        std::filesystem::temp_directory_path() / ("ezio-test-config-" + std::to_string(::getpid()));
    void SetUp() override { std::filesystem::create_directories(dir_); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
};

TEST_F(ConfigFile, LoadsFile) {
    auto path = dir_ / "eziod.conf";
    std::ofstream(path) << "[daemon]\nlisten_port = 9999\n";
    EXPECT_EQ(load_config(path, false).engine.listen_port, 9999);
}

TEST_F(ConfigFile, ErrorsNameTheFile) {
    auto path = dir_ / "bad.conf";
    std::ofstream(path) << "[daemon]\n\nlisten_port = x\n";
    try {
        load_config(path, false);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path.string() + ":3:"), std::string::npos) << e.what();
    }
}

TEST_F(ConfigFile, Missing) {
    DaemonConfig base;
    base.engine.listen_port = 42;
    EXPECT_EQ(load_config(dir_ / "absent.conf", true, base).engine.listen_port, 42);
    EXPECT_THROW(load_config(dir_ / "absent.conf", false), Error);
}

TEST_F(ConfigFile, DirectoryIsAnError) {
    EXPECT_THROW(load_config(dir_, true), Error);
}

}  // namespace
}  // namespace ezio
