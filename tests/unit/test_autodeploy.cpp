// core/autodeploy: kernel command line, merging with eziod.conf, the record
// of deployments, the post-action decision, and editing eziod.conf.
#include "autodeploy.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "torrent_maker.hpp"

namespace ezio {
namespace {

void expect_error(Errc code, const std::string& needle, auto&& fn) {
    try {
        fn();
        ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "message '" << e.what() << "' lacks '" << needle << "'";
    }
}

// --- kernel command line --------------------------------------------------------------

TEST(KernelCmdline, SplitsLikeTheKernel) {
    EXPECT_EQ(split_kernel_cmdline("  a b\tc\n"), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(split_kernel_cmdline("x=\"a b\" \"y=c d\" z"),
              (std::vector<std::string>{"x=a b", "y=c d", "z"}));
    EXPECT_EQ(split_kernel_cmdline("e=\"\""), (std::vector<std::string>{"e="}));
    EXPECT_TRUE(split_kernel_cmdline("").empty());
    EXPECT_TRUE(split_kernel_cmdline(" \n").empty());
}

TEST(KernelCmdline, PicksEzioKeys) {
    auto o = parse_kernel_cmdline(
        "BOOT_IMAGE=/vmlinuz-6.1 root=UUID=1234 ro quiet ezio.torrent=http://10.0.0.1/sda1.torrent "
        "ezio.target=sda1 ezio.then=poweroff ezio.seed-time=600 "
        "ezio.peers=10.0.0.1:6881,10.0.0.2:6881 ezio.redeploy=1 initrd=/initrd.img\n");
    EXPECT_EQ(o.torrent, "http://10.0.0.1/sda1.torrent");
    EXPECT_EQ(o.target, "sda1");
    EXPECT_EQ(o.then, AfterDeploy::Poweroff);
    EXPECT_EQ(o.seed_time, 600);
    ASSERT_TRUE(o.peers);
    EXPECT_EQ(*o.peers, (std::vector<std::string>{"10.0.0.1:6881", "10.0.0.2:6881"}));
    EXPECT_EQ(o.redeploy, true);
    EXPECT_FALSE(o.enabled);
    EXPECT_EQ(o.words.size(), 6u);
    EXPECT_FALSE(o.empty());
}

TEST(KernelCmdline, NothingForUs) {
    auto o = parse_kernel_cmdline("root=/dev/sda2 ro quiet splash ezioX=1 ezi.torrent=x\n");
    EXPECT_TRUE(o.empty());
    EXPECT_FALSE(o.torrent);
    EXPECT_FALSE(o.then);
}

TEST(KernelCmdline, QuotedValuesAndSwitches) {
    auto o = parse_kernel_cmdline(
        "\"ezio.torrent=/srv/my image.torrent\" ezio.redeploy ezio.autodeploy=off");
    EXPECT_EQ(o.torrent, "/srv/my image.torrent");
    EXPECT_EQ(o.redeploy, true);
    EXPECT_EQ(o.enabled, false);
}

TEST(KernelCmdline, BadValuesAreErrorsNamingTheParameter) {
    expect_error(Errc::InvalidArgs, "ezio.then=explode",
                 [] { parse_kernel_cmdline("ezio.then=explode"); });
    expect_error(Errc::InvalidArgs, "reboot, poweroff, seed or none",
                 [] { parse_kernel_cmdline("ezio.then=explode"); });
    expect_error(Errc::InvalidArgs, "ezio.seed_time=soon",
                 [] { parse_kernel_cmdline("ezio.seed_time=soon"); });
    expect_error(Errc::InvalidArgs, "ezio.peers=nohost",
                 [] { parse_kernel_cmdline("ezio.peers=nohost"); });
    expect_error(Errc::InvalidArgs, "ezio.redeploy=maybe",
                 [] { parse_kernel_cmdline("ezio.redeploy=maybe"); });
    expect_error(Errc::InvalidArgs, "unknown parameter ezio.targte",
                 [] { parse_kernel_cmdline("quiet ezio.targte=sda1"); });
    expect_error(Errc::InvalidArgs, "ezio.torrent=", [] { parse_kernel_cmdline("ezio.torrent="); });
    expect_error(Errc::InvalidArgs, "kernel command line",
                 [] { parse_kernel_cmdline("ezio.then"); });
}

TEST(KernelCmdline, ReadsAFile) {
    auto path =
        std::filesystem::temp_directory_path() / ("ezio-cmdline-" + std::to_string(::getpid()));
    std::ofstream(path) << "quiet ezio.target=/dev/loop7\n";
    EXPECT_EQ(read_kernel_cmdline(path).target, "/dev/loop7");
    std::filesystem::remove(path);
    expect_error(Errc::IoError, path.string(), [&] { read_kernel_cmdline(path); });
    EXPECT_TRUE(read_kernel_cmdline("").empty());
}

// --- merging --------------------------------------------------------------------------

AutoDeployConfig from_file() {
    AutoDeployConfig c;
    c.torrent = "/srv/sda1.torrent";
    c.target = "sda1";
    c.then = AfterDeploy::Reboot;
    return c;
}

TEST(AutoDeployMerge, NoOverridesKeepTheFile) {
    auto c = apply_overrides(from_file(), {});
    EXPECT_EQ(c.torrent, "/srv/sda1.torrent");
    EXPECT_EQ(c.target, "sda1");
    EXPECT_EQ(c.then, AfterDeploy::Reboot);
    EXPECT_TRUE(c.enabled());
}

TEST(AutoDeployMerge, KeyByKey) {
    auto c = apply_overrides(from_file(),
                             parse_kernel_cmdline("ezio.then=poweroff ezio.peers=1.2.3.4:6881"));
    EXPECT_EQ(c.torrent, "/srv/sda1.torrent");
    EXPECT_EQ(c.then, AfterDeploy::Poweroff);
    EXPECT_EQ(c.peers, (std::vector<std::string>{"1.2.3.4:6881"}));
}

TEST(AutoDeployMerge, CmdlineAloneIsEnough) {
    auto c = apply_overrides(
        {}, parse_kernel_cmdline("ezio.torrent=tftp://srv/a.torrent ezio.target=sdb1"));
    EXPECT_TRUE(c.enabled());
    EXPECT_EQ(c.torrent, "tftp://srv/a.torrent");
    EXPECT_EQ(c.then, AfterDeploy::None);
}

TEST(AutoDeployMerge, SwitchedOffForOneBoot) {
    auto c = apply_overrides(from_file(), parse_kernel_cmdline("ezio.autodeploy=0"));
    EXPECT_FALSE(c.enabled());
    // Off wins even over a torrent given on the same line.
    c = apply_overrides({}, parse_kernel_cmdline("ezio.torrent=/a ezio.autodeploy=no"));
    EXPECT_FALSE(c.enabled());
}

TEST(AutoDeployMerge, HalfAConfigurationIsAnError) {
    expect_error(Errc::InvalidArgs, "no target",
                 [] { apply_overrides({}, parse_kernel_cmdline("ezio.torrent=/a.torrent")); });
    expect_error(Errc::InvalidArgs, "no torrent",
                 [] { apply_overrides({}, parse_kernel_cmdline("ezio.target=sda1")); });
}

TEST(AutoDeployMerge, TorrentMustBeAbsoluteOrAUrl) {
    AutoDeployConfig c = from_file();
    c.torrent = "images/sda1.torrent";
    expect_error(Errc::InvalidArgs, "neither an absolute path", [&] { apply_overrides(c, {}); });
    c.torrent = "ftp://server/sda1.torrent";
    expect_error(Errc::InvalidArgs, "ftp://", [&] { apply_overrides(c, {}); });
    for (auto ok : {"/srv/a.torrent", "http://s/a", "HTTPS://s/a", "tftp://10.0.0.1/a"}) {
        c.torrent = ok;
        EXPECT_EQ(apply_overrides(c, {}).torrent, ok);
    }
}

TEST(AutoDeployConfigKeys, PeersAndRedeploy) {
    auto c = parse_config(
        "[autodeploy]\ntorrent = /a\ntarget = b\npeers = 10.0.0.1:6881, [::1]:7000  h-1:1\n"
        "redeploy = yes\n",
        "x");
    EXPECT_EQ(c.autodeploy.peers,
              (std::vector<std::string>{"10.0.0.1:6881", "[::1]:7000", "h-1:1"}));
    EXPECT_TRUE(c.autodeploy.redeploy);
    EXPECT_FALSE(c.autodeploy.seed_time);
    EXPECT_FALSE(parse_config("[autodeploy]\ntorrent=/a\ntarget=b\n", "x").autodeploy.redeploy);
    expect_error(Errc::InvalidArgs, "x:2: invalid value 'nohost' for 'peers'",
                 [] { parse_config("[autodeploy]\npeers = nohost\n", "x"); });
    expect_error(Errc::InvalidArgs, "x:2: invalid value 'often' for 'redeploy'",
                 [] { parse_config("[autodeploy]\nredeploy = often\n", "x"); });
}

TEST(AutoDeployMerge, SeedTimeDefaultsFollowThen) {
    AutoDeployConfig c;
    c.then = AfterDeploy::Seed;
    EXPECT_EQ(effective_seed_time(c), -1);
    c.then = AfterDeploy::Reboot;
    EXPECT_EQ(effective_seed_time(c), 0);
    c.seed_time = 300;
    EXPECT_EQ(effective_seed_time(c), 300);
    c.then = AfterDeploy::Seed;
    EXPECT_EQ(effective_seed_time(c), 300);
}

// --- post action -----------------------------------------------------------------------

TEST(PostAction, NeverAfterAFailure) {
    for (auto then :
         {AfterDeploy::None, AfterDeploy::Reboot, AfterDeploy::Poweroff, AfterDeploy::Seed}) {
        EXPECT_EQ(decide_post_action(then, false, true), PostAction::None);
        EXPECT_EQ(decide_post_action(then, false, false), PostAction::None);
        // Not recorded: the next boot would deploy again, so no reboot.
        EXPECT_EQ(decide_post_action(then, true, false), PostAction::None);
    }
    EXPECT_EQ(decide_post_action(AfterDeploy::Reboot, true, true), PostAction::Reboot);
    EXPECT_EQ(decide_post_action(AfterDeploy::Poweroff, true, true), PostAction::Poweroff);
    EXPECT_EQ(decide_post_action(AfterDeploy::Seed, true, true), PostAction::None);
    EXPECT_EQ(decide_post_action(AfterDeploy::None, true, true), PostAction::None);
    EXPECT_EQ(to_string(PostAction::Poweroff), "poweroff");
}

// --- the record ---------------------------------------------------------------------------

class AutoDeployStateTest : public ::testing::Test {
  protected:
    std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                                 ("ezio-test-autodeploy-" + std::to_string(::getpid()));
    void TearDown() override { std::filesystem::remove_all(dir_); }
};

AutoDeployRecord record(std::string hash, std::string target, std::string boot) {
    return {std::move(hash), std::move(target), "/srv/x.torrent", std::move(boot),
            1700000000000000};
}

TEST_F(AutoDeployStateTest, MissingIsEmpty) {
    auto s = load_autodeploy_state(dir_ / "nothing-here");
    EXPECT_TRUE(s.completed.empty());
    EXPECT_TRUE(s.last_state.empty());
}

TEST_F(AutoDeployStateTest, RoundTrip) {
    AutoDeployState s;
    add_completed(s, record("aa", "/dev/sda1", "boot1"));
    s.last_state = "failed";
    s.last_message = "target too small";
    s.last = record("bb", "/dev/sdb1", "boot2");
    save_autodeploy_state(dir_ / "sub", s);
    struct stat st {};
    ASSERT_EQ(::stat(autodeploy_state_path(dir_ / "sub").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);

    auto t = load_autodeploy_state(dir_ / "sub");
    ASSERT_EQ(t.completed.size(), 1u);
    EXPECT_EQ(t.completed[0].info_hash, "aa");
    EXPECT_EQ(t.completed[0].target, "/dev/sda1");
    EXPECT_EQ(t.completed[0].boot_id, "boot1");
    EXPECT_EQ(t.completed[0].torrent, "/srv/x.torrent");
    EXPECT_EQ(t.completed[0].time, 1700000000000000u);
    EXPECT_EQ(t.last_state, "failed");
    EXPECT_EQ(t.last_message, "target too small");
    EXPECT_EQ(t.last.info_hash, "bb");
}

TEST_F(AutoDeployStateTest, DamagedFileIsAnErrorNamingIt) {
    std::filesystem::create_directories(dir_);
    std::ofstream(autodeploy_state_path(dir_)) << "{\"completed\": [";
    expect_error(Errc::Failed, "autodeploy.json is damaged", [&] { load_autodeploy_state(dir_); });
    std::ofstream(autodeploy_state_path(dir_)) << "[1]";
    expect_error(Errc::Failed, "damaged", [&] { load_autodeploy_state(dir_); });
}

TEST(AutoDeployRecords, OncePerImageAndTarget) {
    AutoDeployState s;
    add_completed(s, record("aa", "/dev/sda1", "boot1"));
    EXPECT_NE(find_completed(s, "aa", "/dev/sda1", "boot2", false), nullptr);
    EXPECT_EQ(find_completed(s, "aa", "/dev/sdb1", "boot2", false), nullptr);
    EXPECT_EQ(find_completed(s, "cc", "/dev/sda1", "boot2", false), nullptr);
    // redeploy: only this boot's record counts.
    EXPECT_EQ(find_completed(s, "aa", "/dev/sda1", "boot2", true), nullptr);
    EXPECT_NE(find_completed(s, "aa", "/dev/sda1", "boot1", true), nullptr);
    EXPECT_EQ(find_completed(s, "aa", "/dev/sda1", "", true), nullptr);
}

TEST(AutoDeployRecords, ReplacesAndBounds) {
    AutoDeployState s;
    add_completed(s, record("aa", "/dev/sda1", "boot1"));
    add_completed(s, record("aa", "/dev/sda1", "boot2"));
    ASSERT_EQ(s.completed.size(), 1u);
    EXPECT_EQ(s.completed[0].boot_id, "boot2");
    for (int i = 0; i < 40; ++i)
        add_completed(s, record("h" + std::to_string(i), "/dev/sda1", "b"));
    EXPECT_EQ(s.completed.size(), AutoDeployState::kMaxCompleted);
    EXPECT_EQ(s.completed.back().info_hash, "h39");
    add_completed(s, record("x", "/dev/sdb1", "b"));
    EXPECT_EQ(forget_completed(s, "/dev/sdb1"), 1u);
    EXPECT_EQ(forget_completed(s, ""), AutoDeployState::kMaxCompleted - 1);
    EXPECT_TRUE(s.completed.empty());
}

TEST(AutoDeployRecords, BootId) {
    EXPECT_EQ(read_boot_id("/nonexistent/boot_id"), "");
    auto id = read_boot_id();
    EXPECT_EQ(id.size(), 36u) << id;
}

// --- eziod.conf editing ------------------------------------------------------------------

TEST(AutoDeploySection, FormatParsesBack) {
    AutoDeployConfig c;
    c.torrent = " /srv/odd name.torrent";
    c.target = "/dev/disk/by-path/pci-0000:00:17.0-ata-1-part1";
    c.then = AfterDeploy::Seed;
    c.seed_time = 3600;
    c.peers = {"10.0.0.1:6881", "[::1]:6882"};
    c.redeploy = true;
    auto text = format_autodeploy_section(c);
    auto back = parse_config(text, "x").autodeploy;
    EXPECT_EQ(back.torrent, c.torrent);
    EXPECT_EQ(back.target, c.target);
    EXPECT_EQ(back.then, c.then);
    EXPECT_EQ(back.seed_time, 3600);
    EXPECT_EQ(back.peers, c.peers);
    EXPECT_TRUE(back.redeploy);

    AutoDeployConfig plain;
    plain.torrent = "a";
    plain.target = "b";
    EXPECT_EQ(format_autodeploy_section(plain),
              "[autodeploy]\ntorrent = a\ntarget = b\nthen = none\n");
}

TEST(AutoDeploySection, ReplaceKeepsTheRest) {
    const std::string before =
        "# my eziod\n[daemon]\nlisten_port = 7000\n\n[autodeploy]\ntorrent = old\n"
        "target = sda1\n# note\n[daemon]\nlog_level = debug\n";
    auto after = replace_autodeploy_section(before, "[autodeploy]\ntorrent = new\ntarget = sdb1\n");
    EXPECT_EQ(after,
              "# my eziod\n[daemon]\nlisten_port = 7000\n\n[autodeploy]\ntorrent = new\n"
              "target = sdb1\n[daemon]\nlog_level = debug\n");
    auto c = parse_config(after, "x");
    EXPECT_EQ(c.autodeploy.torrent, "new");
    EXPECT_EQ(c.engine.listen_port, 7000);
    EXPECT_EQ(c.log_level, LogLevel::Debug);
}

TEST(AutoDeploySection, AppendAndRemove) {
    EXPECT_EQ(replace_autodeploy_section("", "[autodeploy]\ntorrent = a\n"),
              "[autodeploy]\ntorrent = a\n");
    EXPECT_EQ(replace_autodeploy_section("[daemon]\nio_threads = 2", "[autodeploy]\n"),
              "[daemon]\nio_threads = 2\n\n[autodeploy]\n");
    EXPECT_EQ(replace_autodeploy_section("[daemon]\n[ autodeploy ]\ntorrent=a\ntarget=b\n", ""),
              "[daemon]\n");
    // Two sections (the parser lets the last value win): both go.
    EXPECT_EQ(
        replace_autodeploy_section("[autodeploy]\ntorrent=a\n[daemon]\n[autodeploy]\ntarget=b\n",
                                   "[autodeploy]\nX\n"),
        "[autodeploy]\nX\n[daemon]\n");
    EXPECT_EQ(replace_autodeploy_section("[daemon]\n", ""), "[daemon]\n");
}

// --- torrents ---------------------------------------------------------------------------------

TEST(AutoDeployTorrent, InfoHash) {
    auto image =
        std::filesystem::temp_directory_path() / ("ezio-ad-image-" + std::to_string(::getpid()));
    {
        std::ofstream out(image, std::ios::binary);
        for (int i = 0; i < (1 << 20); ++i)
            out.put(static_cast<char>(i * 7));
    }
    MakeTorrentOptions options;
    options.name = "sda1";
    auto made = make_torrent_result_from_image(image, options);
    std::filesystem::remove(image);
    EXPECT_EQ(torrent_info_hash(made.torrent), made.info_hash);
    expect_error(Errc::InvalidTorrent, "",
                 [] { torrent_info_hash(std::span<const char>("d4:spam4:eggse", 14)); });
    expect_error(Errc::InvalidTorrent, "", [] { torrent_info_hash({}); });
}

}  // namespace
}  // namespace ezio
