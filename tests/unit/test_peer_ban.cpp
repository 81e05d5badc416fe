// core/peer_ban: the record of banned peers behind the ban plugin. The plugin
// itself is exercised against real peers by tests/system/test_fault_corrupt_peer.sh.
#include "peer_ban.hpp"

#include <gtest/gtest.h>

namespace {

lt::peer_id id(char c) {
    lt::peer_id pid;
    pid[0] = static_cast<std::uint8_t>(c);
    return pid;
}

lt::tcp::endpoint endpoint(const char* ip, unsigned short port) {
    return {lt::make_address(ip), port};
}

TEST(PeerBans, RemembersPeerIdAndListenEndpoint) {
    ezio::PeerBans bans;
    EXPECT_FALSE(bans.banned(id('a')));
    bans.ban(endpoint("10.0.0.7", 6881), id('a'));
    EXPECT_TRUE(bans.banned(id('a')));
    EXPECT_FALSE(bans.banned(id('b')));
    EXPECT_TRUE(bans.banned(lt::make_address("10.0.0.7"), 6881));
    // Another eziod on the same host is another peer.
    EXPECT_FALSE(bans.banned(lt::make_address("10.0.0.7"), 6882));
    EXPECT_FALSE(bans.banned(lt::make_address("10.0.0.8"), 6881));
    EXPECT_EQ(bans.banned_count(), 2u);
}

TEST(PeerBans, IgnoresUnknownIdAndPort) {
    ezio::PeerBans bans;
    bans.ban(endpoint("10.0.0.7", 0), lt::peer_id{});
    EXPECT_EQ(bans.banned_count(), 0u);
    EXPECT_FALSE(bans.banned(lt::peer_id{}));
    EXPECT_FALSE(bans.banned(lt::make_address("10.0.0.7"), 0));
    bans.ban(endpoint("::1", 7000), lt::peer_id{});
    EXPECT_TRUE(bans.banned(lt::make_address("::1"), 7000));
    EXPECT_EQ(bans.banned_count(), 1u);
}

}  // namespace
