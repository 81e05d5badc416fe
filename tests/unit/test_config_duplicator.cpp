// core/config: the [duplicator] section of eziod.conf.
#include <gtest/gtest.h>

#include <string>

#include "config.hpp"

namespace ezio {
namespace {

DaemonConfig parse(std::string_view text) {
    return parse_config(text, "dup.conf");
}

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

TEST(ConfigDuplicator, OffByDefault) {
    EXPECT_FALSE(parse("").duplicator.enabled());
    EXPECT_FALSE(parse("[daemon]\nlisten_port = 1\n").duplicator.enabled());
}

TEST(ConfigDuplicator, EveryKey) {
    auto c = parse(
        "[duplicator]\n"
        "torrent = http://10.0.0.1/disk.torrent\n"
        "match_property = ID_MODEL=Samsung*\n"
        "match_by_path = pci-0000:00:1f.2-ata-*\n"
        "min_size = 100G\n"
        "max_size = 2T\n"
        "partitions = yes\n"
        "verify = on\n"
        "peers = 10.0.0.1:6881, 10.0.0.2:6881\n");
    const auto& d = c.duplicator;
    EXPECT_TRUE(d.enabled());
    EXPECT_EQ(d.torrent, "http://10.0.0.1/disk.torrent");
    EXPECT_EQ(d.match.property, "ID_MODEL=Samsung*");
    EXPECT_EQ(d.match.by_path, "pci-0000:00:1f.2-ata-*");
    EXPECT_EQ(d.match.min_size, std::uint64_t{100} << 30);
    EXPECT_EQ(d.match.max_size, std::uint64_t{2} << 40);
    EXPECT_TRUE(d.match.partitions);
    EXPECT_TRUE(d.verify);
    EXPECT_EQ(d.peers, (std::vector<std::string>{"10.0.0.1:6881", "10.0.0.2:6881"}));
}

TEST(ConfigDuplicator, Defaults) {
    auto c = parse("[duplicator]\ntorrent = /srv/d.torrent\nmatch_property = EZIO_AUTODEPLOY=1\n");
    const auto& d = c.duplicator;
    EXPECT_TRUE(d.enabled());
    EXPECT_FALSE(d.match.by_path);
    EXPECT_FALSE(d.match.min_size);
    EXPECT_FALSE(d.match.max_size);
    EXPECT_FALSE(d.match.partitions);
    EXPECT_FALSE(d.verify);
    EXPECT_TRUE(d.peers.empty());
    // Plain bytes work too.
    EXPECT_EQ(parse("[duplicator]\ntorrent = /t\nmatch_property = MAJOR=7\nmin_size = 4096\n")
                  .duplicator.match.min_size,
              4096u);
}

TEST(ConfigDuplicator, SectionsMix) {
    auto c = parse(
        "[duplicator]\ntorrent = /a.torrent\nmatch_by_path = *-ata-3\n"
        "[daemon]\nlisten_port = 7000\n"
        "[autodeploy]\ntorrent = /b.torrent\ntarget = sda1\n");
    EXPECT_EQ(c.duplicator.torrent, "/a.torrent");
    EXPECT_EQ(c.engine.listen_port, 7000);
    EXPECT_EQ(c.autodeploy.torrent, "/b.torrent");
}

TEST(ConfigDuplicator, Refusals) {
    // A match needs a property or a bay: a size range alone claims any disk.
    expect_invalid("[duplicator]\ntorrent = /t\nmin_size = 1G\n", "property");
    expect_invalid("[duplicator]\ntorrent = /t\n", "[duplicator]");
    // Keys without a torrent are a mistake, not "off".
    expect_invalid("[duplicator]\nmatch_property = A=1\n", "needs 'torrent'");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = NOEQUALS\n", "dup.conf:3:");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = =1\n", "KEY=GLOB");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_by_path =\n", "match_by_path");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = A=1\nmin_size = 1X\n",
                   "dup.conf:4:");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = A=1\nmax_size = -1\n", "max_size");
    expect_invalid(
        "[duplicator]\ntorrent = /t\nmatch_property = A=1\nmin_size = 2G\nmax_size = 1G\n",
        "minimum size exceeds maximum");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = A=1\nverify = maybe\n", "verify");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = A=1\npeers = nope\n", "peers");
    expect_invalid("[duplicator]\ntorrent = /t\nmatch_property = A=1\ntarget = sda\n",
                   "unknown key 'target' in [duplicator]");
}

}  // namespace
}  // namespace ezio
